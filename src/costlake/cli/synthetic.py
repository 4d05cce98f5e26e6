"""`costlake generate` and `costlake demo`: synthetic bills, and the main job end to end on them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from costlake.cli.context import out, parse_date, say, state
from costlake.errors import InputError

app = typer.Typer()

ANOMALIES_HELP = (
    "Inject this many known anomalies (spike, step up, new service, drop, region shift, step up whose "
    "extra spend moves region after a week, in turn) and write them to anomalies_truth.csv."
)
NOISY_MIX_HELP = (
    "Spread the spend of K further account-services (each over $60/day, none with an injected anomaly) "
    "over 3-4 regions in proportions redrawn every day: the region mix changes daily but never moves "
    "for good, and the total is untouched. Written to anomalies_truth.csv as kind noisy_mix, expected "
    "kind none: no alarm should be raised on them."
)


@app.command()
def generate(
    out_dir: Annotated[Path, typer.Argument(help="Folder for the generated billing files.")],
    events: Annotated[int, typer.Option(help="Number of billing events (before re-deliveries).")] = 20_000,
    days: Annotated[int, typer.Option(help="Number of usage days.")] = 90,
    start: Annotated[str, typer.Option(help="First usage date (YYYY-MM-DD).")] = "2025-01-01",
    tenants: Annotated[int, typer.Option(help="Number of tenants.")] = 3,
    accounts_per_tenant: Annotated[int, typer.Option(help="Accounts per tenant.")] = 4,
    batches: Annotated[int, typer.Option(help="Number of delivery files.")] = 4,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same files.")] = 7,
    anomalies: Annotated[int, typer.Option(help=ANOMALIES_HELP)] = 0,
    noisy_mix: Annotated[int, typer.Option(metavar="K", help=NOISY_MIX_HELP)] = 0,
    overwrite: Annotated[
        bool, typer.Option(help="Replace billing files an earlier `generate` wrote in OUT_DIR.")
    ] = False,
) -> None:
    """Write realistic synthetic native billing files plus a tenants.csv."""
    from costlake.synthetic.generate import generate as make

    earlier = sorted(out_dir.glob("billing_batch_*.csv")) if out_dir.is_dir() else []
    if earlier and not overwrite:
        raise InputError(
            f"{out_dir} already holds generated billing files ({earlier[0].name}, …) whose event ids a new "
            "set would reuse; choose another folder or pass --overwrite"
        )
    first = parse_date("--start", start)
    try:
        result = make(
            out_dir,
            events=events,
            days=days,
            start=first,
            tenants=tenants,
            accounts_per_tenant=accounts_per_tenant,
            batches=batches,
            seed=seed,
            anomalies=anomalies,
            noisy_mix=noisy_mix,
        )
    except ValueError as exc:
        raise InputError(str(exc)) from None
    for path in result.files:
        say(f"wrote {path}")
    say(f"wrote {result.tenants_file}")
    if result.truth_file:
        say(
            f"wrote {result.truth_file} ({result.anomalies} injected anomalies, "
            f"{result.noisy_mix} noisy-mix series)"
        )
    out.print(
        f"{result.rows:,} rows in {len(result.files)} file(s): "
        f"{result.redeliveries:,} re-deliveries, {result.credits:,} credits"
    )


@app.command()
def demo(
    data: Annotated[Path, typer.Option(help="Folder for the generated demo files.")] = Path("demo-data"),
    events: Annotated[int, typer.Option(help="Number of billing events.")] = 60_000,
) -> None:
    """Generate 3 months of billing for 3 tenants, ingest, run, and show the result."""
    from costlake.cli.demo import run_demo

    run_demo(state.warehouse(create=True), data, events, out)
