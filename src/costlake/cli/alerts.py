"""`costlake alerts …`: signed webhooks (Standard Webhooks) for new and resolved anomalies of a tenant,
and operations events. See docs/alerts.md."""

from __future__ import annotations

import json
import sys
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from costlake.cli.context import check_choice, out, print_secret, printable, say, state, warn
from costlake.errors import InputError

if TYPE_CHECKING:
    from costlake.alerts.store import Alert, AlertStore

app = typer.Typer(
    help="Alerts: signed webhooks for a tenant's new and resolved anomalies (and operations events).",
    no_args_is_help=True,
)


def _decimal(flag: str, text: str | None) -> Decimal | None:
    if text is None:
        return None
    from costlake.text.csv_cells import PLAIN_NUMBER

    try:  # ASCII digits only, as in a billing file: Decimal reads 1_0 as 10 and full-width digits too
        if not PLAIN_NUMBER.fullmatch(text.strip()):
            raise InvalidOperation
        value = Decimal(text)
    except InvalidOperation:
        raise InputError(f"{flag} must be a number, not {text!r}") from None
    from costlake.alerts.manage import threshold

    return threshold(flag, value)


@app.command("add")
def alerts_add(
    tenant: Annotated[str, typer.Option(help="The tenant whose anomalies the alert sends.")],
    url: Annotated[str, typer.Option(help="The receiver: an http(s) URL, no credentials in it.")],
    min_impact: Annotated[
        str | None, typer.Option("--min-impact", help="Only anomalies of at least this |impact| in USD.")
    ] = None,
    min_pct: Annotated[
        str | None,
        typer.Option("--min-pct", help="Only anomalies of at least this |impact| in % (new services pass)."),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="json (Standard Webhooks) or slack.")] = "json",
    events: Annotated[
        str, typer.Option(help="anomalies, operations, or both: anomalies,operations.")
    ] = "anomalies",
    include_existing: Annotated[
        bool,
        typer.Option(
            "--include-existing", help="Also send the anomalies the tenant has now (default: only new ones)."
        ),
    ] = False,
) -> None:
    """Add a webhook alert for a tenant. Prints its id, then the signing secret (`whsec_…`) alone on the
    last line, shown once: `SECRET=$(costlake alerts add … | tail -1)`."""
    from costlake.alerts.manage import add_alert, check_url, parse_events

    check_choice("--format", fmt, ("json", "slack"))
    chosen = parse_events(events)
    if (warning := check_url(url)) is not None:
        warn(f"warning: {warning}")
    alert, secret = add_alert(
        state.warehouse(), tenant, url, min_impact=_decimal("--min-impact", min_impact),
        min_pct=_decimal("--min-pct", min_pct), fmt=fmt, events=chosen, include_existing=include_existing,
    )  # fmt: skip
    say(f"alert {alert.alert_id} for tenant {alert.tenant_id}; its signing secret, shown once: store it now")
    print_secret(secret)


def _store() -> AlertStore:
    from costlake.alerts.manage import open_store

    return open_store(state.warehouse())


def _row(alert: Alert, store: AlertStore) -> dict[str, object]:
    from costlake.alerts.manage import shown_url

    last = store.last(alert.alert_id)
    return {
        "alert_id": alert.alert_id,
        "tenant_id": alert.tenant_id,
        "url": shown_url(alert.url),
        "min_impact_usd": None if alert.min_impact is None else format(alert.min_impact, "f"),
        "min_pct": None if alert.min_pct is None else format(alert.min_pct, "f"),
        "format": alert.format,
        "events": ",".join(sorted(alert.events)),
        "state": "active" if alert.disabled is None else f"disabled: {alert.disabled}",
        "last_delivery": None
        if last is None
        else f"{last.state} {last.status or '-'} {last.error or ''}".strip(),
        "last_delivery_at": None if last is None else last.updated_at,
        "created_at": alert.created_at.isoformat(),
    }


@app.command("list")
def alerts_list(fmt: Annotated[str, typer.Option("--format", help="text or json.")] = "text") -> None:
    """List alerts: id, tenant, URL (scheme and host only), thresholds, format, events, state (a 410
    answer disables an endpoint) and the last delivery's outcome. Secrets are never shown."""
    check_choice("--format", fmt, ("text", "json"))
    store = _store()
    try:
        rows = [_row(a, store) for a in store.alerts()]
    finally:
        store.close()
    if fmt == "json":
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    if not rows:
        say("no alerts")
        return
    columns = ("alert", "tenant", "url", "min $", "min %", "format", "events", "state", "last delivery")
    table = Table(*columns)
    for r in rows:
        last = "-" if r["last_delivery"] is None else f"{r['last_delivery']} at {r['last_delivery_at']}"
        cells = (r["alert_id"], r["tenant_id"], r["url"], r["min_impact_usd"] or "-", r["min_pct"] or "-",
                 r["format"], r["events"], r["state"], last)  # fmt: skip
        table.add_row(*(Text(printable(str(c))) for c in cells))
    out.print(table)


@app.command("remove")
def alerts_remove(
    alert_id: Annotated[str, typer.Argument(help="The alert's id (alr_…) or its unique start.")],
) -> None:
    """Remove an alert, its delivery log and its signing secret."""
    from costlake.alerts.manage import remove_alert

    alert = remove_alert(state.warehouse(), alert_id)
    say(f"alert {alert.alert_id} (tenant {alert.tenant_id}) removed")


@app.command("rotate-secret")
def alerts_rotate_secret(alert_id: Annotated[str, typer.Argument(help="The alert's id (alr_…).")]) -> None:
    """Make a new signing secret, printed alone on the last line; the old one stops signing at once."""
    from costlake.alerts.manage import rotate_secret

    alert, secret = rotate_secret(state.warehouse(), alert_id)
    say(f"alert {alert.alert_id}: new signing secret, shown once; the old one signs nothing from now on")
    print_secret(secret)


@app.command("test")
def alerts_test(alert_id: Annotated[str, typer.Argument(help="The alert's id (alr_…).")]) -> None:
    """Send a sample event (`"type": "alert.test"`), signed, and print the HTTP status. Exit 1 if it was
    not delivered (a 410 answer disables the alert, as for any delivery)."""
    from costlake.alerts.manage import send_test

    alert, outcome = send_test(state.warehouse(), alert_id)
    status = "no answer" if outcome.status is None else f"HTTP {outcome.status}"
    say(
        f"alert {alert.alert_id}: test event {outcome.state} "
        f"({status}{', ' + outcome.error if outcome.error else ''})"
    )
    if outcome.state != "delivered":  # the receiver or its URL needs fixing: exit 1
        raise InputError(f"the test event was not delivered to alert {alert.alert_id} ({status})")


@app.command("send")
def alerts_send() -> None:
    """Deliver what is due now: new and resolved anomalies, stale data, and deliveries that failed or
    were cut short before. `costlake run` does this after detection."""
    from costlake.alerts.send import send_alerts

    report = send_alerts(state.warehouse())
    if not report.alerts:
        say("no active alerts")
    for result in report.alerts:
        say(result.line())
    if any(r.failed or r.rejected for r in report.alerts):  # exit 1, so that cron notices
        raise InputError("some deliveries failed or were rejected (see the lines above)")
