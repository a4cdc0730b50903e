"""Tidy group-bys of run records: type fractions with binomial intervals, strata, coverage.

Every function takes a pandas DataFrame as returned by :func:`mcland.load` (only the
columns it names are needed) and returns a new tidy DataFrame; none of them reads or
writes files except :func:`load_depth`, which loads one depth with predicate pushdown.
Columns that a spectrum-free run leaves null (``n_neg``, ``n_zero``, ``eig_min_w``, ...)
are dropped row-wise by :func:`drop_null`, which also says how many rows went.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from math import comb
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from scipy.stats import binom

from mcland._kernels.fields import TYPE_NAMES
from mcland.core.errors import MclandError
from mcland.rundir.files import SHARD_GLOB, load, read_manifest

TYPES = list(TYPE_NAMES)
"""The type codes of ``theory_type`` / ``numeric_type``, in display order (the kernels'
codes, :data:`mcland._kernels.fields.TYPE_NAMES`)."""


def run_columns(run_dir: str | Path) -> list[str]:
    """Column names of a run directory's shards (empty list if it has none yet)."""
    read_manifest(run_dir)
    files = sorted(Path(run_dir).glob(SHARD_GLOB))
    return list(pq.read_schema(files[0]).names) if files else []


def load_depth(run_dir: str | Path, H: int, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """The records of depth ``H`` only, read with predicate (and column) pushdown.

    Parameters
    ----------
    run_dir : path
        A run directory.
    H : int
        Depth to keep.
    columns : sequence of str, optional
        Columns to read (all if omitted).

    Returns
    -------
    pandas.DataFrame
    """
    return load(
        run_dir, columns=None if columns is None else list(columns), filters=[("H", "==", H)]
    )


def drop_null(df: pd.DataFrame, columns: Sequence[str]) -> tuple[pd.DataFrame, int]:
    """Rows of ``df`` where none of ``columns`` is null, and the number of rows dropped."""
    keep = df[list(columns)].notna().all(axis=1)
    return df[keep], int((~keep).sum())


def wilson_interval(
    k: np.ndarray | int, n: np.ndarray | int, confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a binomial proportion ``k / n`` (vectorised).

    Parameters
    ----------
    k, n : int or array of int
        Successes and trials; ``n = 0`` gives the uninformative interval ``[0, 1]``.
    confidence : float
        Two-sided confidence level.

    Returns
    -------
    lo, hi : ndarray of float
    """
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / n
        denom = 1 + z**2 / n
        centre = (p + z**2 / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
        lo = np.where(n > 0, np.clip(centre - half, 0.0, 1.0), 0.0)
        hi = np.where(n > 0, np.clip(centre + half, 0.0, 1.0), 1.0)
    # exact endpoints at k = 0 and k = n (the formula gives them up to rounding)
    lo = np.where(k == 0, 0.0, lo)
    hi = np.where(k == n, 1.0, hi)
    return lo, hi


def median_interval(x: np.ndarray, confidence: float = 0.95) -> tuple[float, float, float]:
    """The median of ``x`` and a distribution-free interval for it.

    The interval is ``[x_(j), x_(n+1-j)]`` (order statistics, 1-based) with ``j`` the
    largest index such that ``P(Binomial(n, 1/2) < j) <= (1 - confidence) / 2``; its
    coverage is at least ``confidence`` for ``n >= 6``.  For ``n <= 5`` no such ``j >= 1``
    exists and the interval is the range (coverage ``1 - 2^(1-n)``).

    Returns
    -------
    (median, lo, hi) : floats; NaN for an empty ``x``.
    """
    x = np.sort(np.asarray(x, float))
    n = x.size
    if not n:
        return np.nan, np.nan, np.nan
    j = int(binom.ppf((1.0 - confidence) / 2.0, n, 0.5))  # P(B <= j) >= alpha/2
    if j >= 1 and binom.cdf(j - 1, n, 0.5) > (1.0 - confidence) / 2.0:
        j -= 1
    j = max(j, 1)
    return float(np.median(x)), float(x[j - 1]), float(x[n - j])


def type_fractions(
    df: pd.DataFrame,
    by: str | Sequence[str],
    type_col: str = "numeric_type",
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Fraction of each type per group, with Wilson intervals.

    Parameters
    ----------
    df : DataFrame
        Records with the ``by`` columns and ``type_col``.
    by : str or sequence of str
        Grouping columns, e.g. ``"H"``, ``"r"``, ``"s"``, ``["H", "r"]``.
    type_col : str
        ``numeric_type`` or ``theory_type``.
    confidence : float
        Level of the intervals.

    Returns
    -------
    DataFrame
        Rows whose type is null are not counted (drop them first with :func:`drop_null`
        to know how many). One row per group and type (every type of :data:`TYPES`, zero
        counts included):
        the ``by`` columns, ``type``, ``count``, ``total``, ``fraction``, ``lo``, ``hi``.
    """
    by = [by] if isinstance(by, str) else list(by)
    types = pd.Categorical(df[type_col].astype(str), categories=TYPES)
    counts = pd.crosstab([df[c] for c in by], types, dropna=False).reindex(
        columns=TYPES, fill_value=0
    )
    counts.columns.name = "type"
    tidy = counts.stack().rename("count").reset_index()
    tidy["total"] = tidy.groupby(by, observed=True)["count"].transform("sum")
    tidy = tidy[tidy["total"] > 0].reset_index(drop=True)
    tidy["fraction"] = tidy["count"] / tidy["total"]
    tidy["lo"], tidy["hi"] = wilson_interval(
        tidy["count"].to_numpy(), tidy["total"].to_numpy(), confidence
    )
    return tidy


def confusion(
    df: pd.DataFrame, rows: str = "theory_type", cols: str = "numeric_type"
) -> pd.DataFrame:
    """Counts of one type column (rows) x another (columns), all types included.

    The default is theory x numeric; ``cols="audit_type"`` (on the audited rows of a
    spectrum-free run) compares with the spectral audit.
    """
    a = pd.Categorical(df[rows].astype(str), categories=TYPES)
    b = pd.Categorical(df[cols].astype(str), categories=TYPES)
    table = pd.crosstab(a, b, dropna=False).reindex(index=TYPES, columns=TYPES, fill_value=0)
    table.index.name, table.columns.name = rows, cols
    return table


def disagreements(df: pd.DataFrame) -> pd.DataFrame:
    """Points where theory and numeric type differ or either says ``ambiguous``.

    With an ``audit_type`` column (spectrum-free runs), audited points whose spectral type
    differs from the numeric type (or is ambiguous) are included too.
    """
    th, nu = df["theory_type"].astype(str), df["numeric_type"].astype(str)
    odd = (th != nu) | (th == "ambiguous") | (nu == "ambiguous")
    if "audit_type" in df.columns:
        audited = df["audit_type"].notna()
        au = df["audit_type"].astype(str)
        odd |= audited & ((au != nu) | (au == "ambiguous"))
    return df[odd.to_numpy()]


def as_key(values: object) -> tuple[int, ...]:
    """A hashable tuple of ints from a list-column cell (``dims``, ``S``, ``ranks``)."""
    return tuple(int(v) for v in np.asarray(values).ravel())


def strata(df: pd.DataFrame, keys: Sequence[str] = ("dims", "S", "ranks")) -> pd.DataFrame:
    """``n_neg`` / ``n_zero`` per stratum (architecture, index set, rank profile).

    Parameters
    ----------
    df : DataFrame
        Records with ``keys``, ``n_neg``, ``n_zero`` and ``numeric_type`` (rows with null
        inertia must have been dropped, see :func:`drop_null`).
    keys : sequence of str
        List columns defining a stratum.

    Returns
    -------
    DataFrame
        One row per stratum, largest first: the keys (as tuples), ``n``, ``n_neg_min``,
        ``n_neg_max``, ``n_zero_min``, ``n_zero_max``, ``types`` (the numeric types seen,
        joined by ``/``) and ``constant`` (False when the inertia or the type varies).
    """
    keyed = pd.DataFrame({k: [as_key(v) for v in df[k]] for k in keys}, index=df.index)
    keyed["n_neg"] = df["n_neg"].astype(int)
    keyed["n_zero"] = df["n_zero"].astype(int)
    keyed["type"] = df["numeric_type"].astype(str)
    g = keyed.groupby(list(keys), sort=False)
    out = g.agg(
        n=("n_neg", "size"),
        n_neg_min=("n_neg", "min"),
        n_neg_max=("n_neg", "max"),
        n_zero_min=("n_zero", "min"),
        n_zero_max=("n_zero", "max"),
        types=("type", lambda t: "/".join(sorted(set(t)))),
    ).reset_index()
    out["constant"] = (
        (out["n_neg_min"] == out["n_neg_max"])
        & (out["n_zero_min"] == out["n_zero_max"])
        & ~out["types"].str.contains("/")
    )
    return out.sort_values(["n", "types"], ascending=[False, True], kind="stable").reset_index(
        drop=True
    )


def n_critical_values(d_y: int, r: int) -> int:
    """``sum_{k <= r} C(d_y, k)``: the number of index sets, hence of critical values."""
    return sum(comb(d_y, k) for k in range(min(r, d_y) + 1))


def match_critical_values(df: pd.DataFrame) -> pd.DataFrame:
    """Position of each point's loss in its enumerated set of critical values.

    Parameters
    ----------
    df : DataFrame
        Records with ``loss``, ``loss_tol``, ``critical_values`` (rows where it is null
        should be dropped first).

    Returns
    -------
    DataFrame
        Indexed like ``df``: ``n_values`` (size of the enumerated set), ``position``
        (0-based index of the nearest enumerated value in ascending order, 0 = global
        minimum), ``distance`` (``|loss - nearest value|``), ``n_within`` (number of values
        within ``loss_tol``: more than one when the set is finer than the loss resolution)
        and ``matched`` (``distance <= loss_tol``).
    """
    n = len(df)
    pos, size, within = np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, np.int64)
    dist = np.empty(n)
    rows = zip(df["loss"].to_numpy(), df["loss_tol"].to_numpy(), df["critical_values"], strict=True)
    for i, (loss, tol, values) in enumerate(rows):
        v = np.asarray(values, dtype=float)
        gaps = np.abs(v - loss)
        pos[i] = int(np.argmin(gaps))
        dist[i] = gaps[pos[i]]
        size[i] = v.size
        within[i] = int((gaps <= tol).sum())
    out = pd.DataFrame(
        {"n_values": size, "position": pos, "distance": dist, "n_within": within}, index=df.index
    )
    out["matched"] = out["distance"] <= df["loss_tol"].to_numpy()
    return out


def coverage(df: pd.DataFrame, by: Sequence[str] = ("d_y", "r")) -> pd.DataFrame:
    """Which enumerated critical values were reached, per group.

    Parameters
    ----------
    df : DataFrame
        Records with the ``by`` columns and the columns of :func:`match_critical_values`
        (``n_values``, ``position``, ``matched``).
    by : sequence of str
        Grouping, e.g. ``("d_y", "r")`` (the set's size depends only on them) or
        ``("dims",)`` after converting ``dims`` to tuples.

    Returns
    -------
    DataFrame
        ``by``, ``points``, ``n_values``, ``expected`` (``sum_{k<=r} C(d_y, k)`` when
        ``d_y`` and ``r`` are among the columns), ``reached`` (distinct matched
        positions), ``coverage`` (``reached / n_values``), ``unmatched``.
    """
    rows = []
    for key, g in df.groupby(list(by), sort=True, observed=True):
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(by, key, strict=True))
        n_values = int(g["n_values"].max())
        reached = int(g.loc[g["matched"], "position"].nunique())
        row.update(points=len(g), n_values=n_values, reached=reached)
        if {"d_y", "r"} <= set(g.columns):
            row["expected"] = n_critical_values(int(g["d_y"].iloc[0]), int(g["r"].iloc[0]))
        row["coverage"] = reached / n_values if n_values else np.nan
        row["unmatched"] = int((~g["matched"]).sum())
        rows.append(row)
    return pd.DataFrame(rows)


@dataclass
class Verdict:
    """Outcome of checking one claim: a title, PASS/FAIL and the numbers behind it."""

    claim: str
    passed: bool = True
    lines: list[str] = field(default_factory=list)

    def note(self, line: str) -> None:
        """Add an explanatory line."""
        self.lines.append(line)

    def require(self, ok: bool, line: str) -> None:
        """Add a line that must hold; a false ``ok`` fails the verdict."""
        self.lines.append(("ok    " if ok else "FAIL  ") + line)
        self.passed &= bool(ok)

    def render(self) -> str:
        """The verdict as text: the claim, the lines, then ``PASS`` or ``FAIL``."""
        head = f"claim: {self.claim}"
        return "\n".join([head, *(f"  {x}" for x in self.lines), "PASS" if self.passed else "FAIL"])

    def exit(self) -> int:
        """Print the verdict; return the exit status (0 pass, 1 fail)."""
        print(self.render(), flush=True)
        return 0 if self.passed else 1


def claim_main(
    check: Callable[..., Verdict],
    argv: Sequence[str],
    usage: str | None,
    outputs: bool = False,
) -> int:
    """Command-line driver of a claim script: ``check(RUN_DIR)``, print, exit status.

    With ``outputs``, the script also takes ``--tables DIR`` and ``--figures DIR`` and is
    called as ``check(RUN_DIR, tables, figures)`` (None for an option not given), writing its
    CSV tables and PNG figures there.

    Returns 0 when the claim holds, 1 when it fails and 2 on bad input (wrong arguments or
    a path that is not a run directory; the message goes to stderr).
    """
    if not outputs:
        if len(argv) != 1:
            print(usage or "usage: RUN_DIR", file=sys.stderr)
            return 2
        args: tuple = (argv[0],)
    else:
        import argparse

        ap = argparse.ArgumentParser(description=(usage or "").splitlines()[0] if usage else None)
        ap.add_argument("run_dir")
        ap.add_argument("--tables", type=Path, help="write the CSV tables here")
        ap.add_argument("--figures", type=Path, help="write the PNG figures here")
        ns = ap.parse_args(list(argv))
        args = (ns.run_dir, ns.tables, ns.figures)
    try:
        return check(*args).exit()
    except MclandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def dynamics_not_applicable(run_dir: str | Path, experiment: str) -> str | None:
    """Why a claim about the dynamics experiment ``experiment`` does not apply to
    ``run_dir`` (None when it does: a ``dynamics`` run of that experiment)."""
    m = read_manifest(run_dir)
    exp = (m.get("config") or {}).get("dynamics", {}).get("experiment")
    if m.get("kind") != "dynamics" or exp != experiment:
        return f"not a dynamics run of the {experiment!r} experiment"
    return None


def load_dynamics(run_dir: str | Path, experiment: str, columns: list[str]) -> pd.DataFrame:
    """The records ``columns`` of a dynamics run of ``experiment``; MclandError for any other
    run (:func:`dynamics_not_applicable`)."""
    why = dynamics_not_applicable(run_dir, experiment)
    if why:
        raise MclandError(f"{run_dir}: {why}")
    return load(run_dir, columns=columns)
