"""Published values, registered measurements and verdicts (see :mod:`alignlib.claims`)."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable

import pandas as pd
import yaml

from alignlib.paths import results_dir

__all__ = ["RULES", "Measurement", "published", "published_value", "verdict", "record", "ledger", "relations",
           "paper_direction"]

PUBLISHED_FILE = Path(__file__).with_name("published.yml")

#: rule -> what it checks (shown on the ledger page)
RULES = {
    "within_ci": "the published value lies inside our 95 % CI",
    "above_chance": "qualitative: our 95 % CI lies above chance, as the paper reports",
    "not_comparable": "measured on data too different to compare numbers (shown side by side only)",
    "paired_difference": "relative claim (A beats B, removing X lowers the score): the 95 % CI of our "
                         "difference A - B lies on the paper's side of zero: holds; on the other side: reversed; "
                         "across zero: inconclusive. The side is a sign only: 'substantially' or 'largely' in "
                         "the paper's words is not tested. The interval is a paired bootstrap over test items "
                         "where A and B are tested on the same items; a hierarchical bootstrap (mice, then test "
                         "images) where they are other mice; a subsampling interval for statistics a bootstrap "
                         "biases (PCA spectra); a t interval over mice for one number per mouse. Each row's "
                         "data say which, and over what; the interval is conditional on the trained models. On "
                         "a stand-in (the twin), holds / reversed describe the stand-in. No verdict from runs "
                         "that did not converge.",
    "conjunction": "a claim made of several relative claims (an ordering of models: A beats B and C at every "
                   "k; a property of both towers): holds when every part's 95 % CI lies on the paper's side "
                   "of zero (an intersection-union test: no multiplicity correction is needed for 'holds'); "
                   "reversed when at least one part's CI lies on the other side (not corrected for the number "
                   "of parts); inconclusive otherwise. The page registers the smallest difference with the "
                   "smallest lower and the smallest upper bound of the parts' intervals, and lists the parts "
                   "in its data column. Each part's interval is that of the paired_difference rule.",
}
VERDICTS = ("holds", "reversed", "inconclusive", "consistent", "differs", "replicated", "not replicated",
            "no verdict: not converged", "not comparable on this data", "not measured yet")


@lru_cache(maxsize=None)
def _load(path: str) -> tuple[pd.DataFrame, dict]:
    raw = yaml.safe_load(Path(path).read_text())
    rows = []
    for entry in raw["claims"]:
        common = {k: entry.get(k, "") for k in ("paper", "where", "chapter", "measures", "data", "unit")}
        if "table" in entry:
            keys = entry["keys"]
            for row in entry["rows"]:
                if len(row) != len(keys) + 1:
                    raise ValueError(f"{path}: row {row} of {entry['table']} needs {len(keys)} keys and a value")
                labels = dict(zip(keys, row[:-1]))
                rows.append({"id": ".".join([entry["table"], *map(str, row[:-1])]), **common,
                             "key": ", ".join(f"{k}={v}" for k, v in labels.items()), "value": float(row[-1]),
                             "direction": ""})
        else:
            value = entry["value"]
            rows.append({"id": entry["id"], **common, "key": "qualitative" if value is None else "",
                         "value": math.nan if value is None else float(value),
                         "direction": entry.get("direction", "")})
    for entry in raw.get("relations", []):
        rows += _expand_relation(entry, {r["id"]: r["value"] for r in rows}, path)
    df = pd.DataFrame(rows)
    df["kind"] = ["relative" if d else "absolute" for d in df.direction]
    dup = df.id[df.id.duplicated()].tolist()
    if dup:
        raise ValueError(f"{path}: duplicate claim ids {dup}")
    unknown = set(df.paper) - set(raw["papers"])
    if unknown:
        raise ValueError(f"{path}: claims cite papers not listed under `papers`: {sorted(unknown)}")
    return df, raw["papers"]


def _expand_relation(entry: dict, values: dict[str, float], path: str) -> list[dict]:
    """One relative claim per combination of ``over``: A and B are published claims (id templates), the
    claim is their published difference A - B and its sign is the paper's side (``direction``).
    ``skip`` lists combinations where the paper's own table gives no consistent side."""
    import itertools

    over = entry.get("over") or {}
    names = list(over)
    out = []
    skip = [{k: str(v) for k, v in s.items()} for s in entry.get("skip", [])]
    for combo in itertools.product(*(over[n] for n in names)):
        fill = dict(zip(names, map(str, combo)))
        if any(all(fill.get(k) == v for k, v in s.items()) for s in skip):
            continue                                  # the paper's table contradicts itself there
        a, b = entry["a"].format(**fill), entry["b"].format(**fill)
        for ref in (a, b):
            if ref not in values:
                raise ValueError(f"{path}: relation {entry['id']} refers to unknown claim {ref!r}")
        diff = values[a] - values[b]
        if diff == 0:
            continue                                  # the paper's numbers tie: no side to judge
        out.append({"id": entry["id"].format(**fill), "paper": entry["paper"], "where": entry["where"],
                    "chapter": entry["chapter"], "measures": entry["measures"].format(**fill),
                    "data": entry.get("data", ""), "unit": entry.get("unit", ""),
                    "key": f"{a} - {b}", "value": round(diff, 10), "direction": ">" if diff > 0 else "<"})
    return out


def relations(prefix: str = "", path: str | Path = PUBLISHED_FILE) -> pd.DataFrame:
    """The relative claims (kind "relative"): published ones stated in words (``direction``) and those
    expanded from ``relations`` in published.yml (value = the published difference A - B)."""
    df, _ = _load(str(path))
    return df[(df.kind == "relative") & df.id.str.startswith(prefix)].reset_index(drop=True)


def paper_direction(claim_id: str, path: str | Path = PUBLISHED_FILE) -> str:
    """">" when the paper has A above B (its published difference, or its words, is positive), "<" otherwise."""
    df, _ = _load(str(path))
    hit = df[df.id == claim_id]
    if hit.empty:
        raise KeyError(f"no published claim {claim_id!r}")
    d = hit.direction.iloc[0]
    if not d:
        raise ValueError(f"claim {claim_id!r} is not a relative claim (no direction in published.yml)")
    return d


def published(prefix: str = "", path: str | Path = PUBLISHED_FILE) -> pd.DataFrame:
    """Published claims whose id starts with ``prefix`` (id, paper, where, chapter, measures, data, unit, key, value)."""
    df, _ = _load(str(path))
    return df[df.id.str.startswith(prefix)].reset_index(drop=True)


def published_value(claim_id: str, path: str | Path = PUBLISHED_FILE) -> float:
    df, _ = _load(str(path))
    hit = df[df.id == claim_id]
    if hit.empty:
        raise KeyError(f"no published claim {claim_id!r}")
    return float(hit.value.iloc[0])


def citation(paper: str, path: str | Path = PUBLISHED_FILE) -> str:
    return _load(str(path))[1][paper]


@dataclass
class Measurement:
    """What a page measured for one published claim, in the claim's unit."""

    claim: str
    value: float
    ci_low: float = math.nan
    ci_high: float = math.nan
    rule: str = "not_comparable"
    chance: float = math.nan
    our_data: str = ""          # what we measured on (e.g. "quick twin, 100-way retrieval")
    page: str = ""              # the page that measured it (e.g. "dina/results")
    note: str = ""
    converged: bool | None = None   # False: a run behind it stopped at its epoch cap (no verdict); None: no training


def verdict(rule: str, published_value: float, m: Measurement, direction: str = "") -> str:
    """The verdict of ``rule`` (:data:`RULES`) for one measurement. ``direction`` (">" or "<", the paper's
    side of A - B) is needed by ``paired_difference``; without it the published value's sign is used."""
    if rule not in RULES:
        raise ValueError(f"unknown rule {rule!r}; choose from {', '.join(RULES)}")
    if rule == "not_comparable":
        return "not comparable on this data"
    if math.isnan(m.ci_low) or math.isnan(m.ci_high):
        raise ValueError(f"rule {rule!r} needs a CI for claim {m.claim}")
    if m.converged is False:
        return "no verdict: not converged"
    if rule == "conjunction" and direction != ">":
        raise ValueError(f"rule 'conjunction' registers the smallest part: the paper's side must be '>' "
                         f"(claim {m.claim})")
    if rule in ("paired_difference", "conjunction"):
        if not direction:
            if math.isnan(published_value) or published_value == 0:
                raise ValueError(f"rule {rule!r} needs the paper's direction for claim {m.claim}")
            direction = ">" if published_value > 0 else "<"
        lo, hi = (m.ci_low, m.ci_high) if direction == ">" else (-m.ci_high, -m.ci_low)
        return "holds" if lo > 0 else "reversed" if hi < 0 else "inconclusive"
    if rule == "within_ci":
        return "consistent" if m.ci_low <= published_value <= m.ci_high else "differs"
    if math.isnan(m.chance):
        raise ValueError(f"rule 'above_chance' needs the chance level for claim {m.claim}")
    return "replicated" if m.ci_low > m.chance else "not replicated"


def record(chapter: str, page: str, measurements: Iterable[Measurement]) -> pd.DataFrame:
    """Register a page's measurements: checks each claim exists, computes verdicts, writes
    ``results/<chapter>/claims_<page>.csv`` (replacing that page's earlier rows) and returns the
    rows.

    In a dry run (:mod:`alignlib.dryrun`) every row is marked ``dry_run`` (True), and :func:`ledger`
    ignores such rows outside a dry run: a dry run's numbers never reach the claims ledger."""
    from alignlib import dryrun

    dry = dryrun.active()
    rows = []
    for m in measurements:
        pub = published_value(m.claim)
        direction = paper_direction(m.claim) if m.rule in ("paired_difference", "conjunction") else ""
        rows.append({**asdict(m), "page": m.page or f"{chapter}/{page}", "published": pub,
                     "verdict": verdict(m.rule, pub, m, direction),
                     **({"dry_run": True} if dry else {})})
    df = pd.DataFrame(rows)
    path = results_dir(chapter) / f"claims_{page.replace('/', '_')}.csv"
    df.to_csv(path, index=False)
    from alignlib.report import register_output

    register_output(path)
    return df


def ledger(root: str | Path | None = None) -> pd.DataFrame:
    """Every published claim with our registered measurement (if any) and its verdict.

    Claims nobody has measured yet have verdict "not measured yet". If two pages registered the same
    claim, both rows are kept. Rows a dry run registered (``dry_run`` True, :func:`record`) are
    left out unless this is a dry run itself (its own ledger page shows them, under its dry-run
    banner).
    """
    from alignlib import dryrun

    root = Path(root) if root else results_dir()
    pub = published()
    measured = [pd.read_csv(p) for p in sorted(root.glob("*/claims_*.csv"))]
    if not dryrun.active():       # a dry run's rows never enter a real ledger
        measured = [m[~m["dry_run"].fillna(False).astype(bool)].drop(columns="dry_run")
                    if "dry_run" in m.columns else m for m in measured]
        measured = [m for m in measured if len(m)]
    if measured:
        m = pd.concat(measured, ignore_index=True).rename(columns={"claim": "id", "value": "ours"})
        out = pub.merge(m.drop(columns=["published"]), on="id", how="left")
    else:
        out = pub.assign(ours=math.nan, ci_low=math.nan, ci_high=math.nan, rule="", chance=math.nan,
                         our_data="", page="", note="", verdict=math.nan)
    out["verdict"] = out["verdict"].astype(object).fillna("not measured yet")
    return out
