"""The few SQL spellings that differ between engines, declared as data.

Stages and checks are written once, in the SQL both engines accept (`CAST(x AS STRING)`, `||`,
`INTERVAL 'n' HOUR`, `md5`, `concat_ws`, ...). Where a construct has no common spelling, the SQL
builder asks the engine's `Dialect` for it instead of testing which engine runs it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Dialect:
    r"""SQL templates with `{value}`, `{order}` and `{sep}` placeholders, and literal quoting rules.

    >>> DUCKDB.sorted_distinct_join("currency", ", ")
    "string_agg(DISTINCT currency, ', ' ORDER BY currency)"
    >>> SPARK.sorted_distinct_join("currency", ", ")
    "array_join(array_sort(collect_set(currency)), ', ')"
    >>> DUCKDB.literal("it's a\\b"), SPARK.literal("it's a\\b")
    ("'it''s a\\b'", "'it\\'s a\\\\b'")
    """

    name: str
    # The distinct non-null values of a group, sorted (byte order) and joined by a separator.
    distinct_join: str
    # The non-null values of a group, in the order of another expression, joined by a separator.
    ordered_join: str
    # Whether a backslash starts an escape sequence inside a string literal.
    backslash_escapes: bool

    def literal(self, text: str) -> str:
        """`text` as a string literal that reads back as exactly `text`."""
        if self.backslash_escapes:
            text = text.replace("\\", "\\\\")
        return "'" + text.replace("'", "\\'" if self.backslash_escapes else "''") + "'"

    def sorted_distinct_join(self, value: str, sep: str) -> str:
        return self.distinct_join.format(value=value, sep=self.literal(sep))

    def join_ordered_by(self, value: str, order: str, sep: str) -> str:
        return self.ordered_join.format(value=value, order=order, sep=self.literal(sep))


DUCKDB = Dialect(
    name="duckdb",
    distinct_join="string_agg(DISTINCT {value}, {sep} ORDER BY {value})",
    ordered_join="string_agg({value}, {sep} ORDER BY {order})",
    backslash_escapes=False,
)

# Spark has no ordered string_agg before 4.0 and no DISTINCT with ORDER BY in it: sort an array.
# collect_* skip NULLs as string_agg does; sorting (order, value) pairs orders by `order` first.
SPARK = Dialect(
    name="spark",
    distinct_join="array_join(array_sort(collect_set({value})), {sep})",
    ordered_join=(
        "array_join(transform(array_sort(collect_list(named_struct('o', {order}, 'v', {value}))), "
        "e -> e.v), {sep})"
    ),
    backslash_escapes=True,
)
