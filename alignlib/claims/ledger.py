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

__all__ = ["RULES", "Measurement", "published", "published_value", "verdict", "record", "ledger"]

PUBLISHED_FILE = Path(__file__).with_name("published.yml")

#: rule -> what it checks (shown on the ledger page)
RULES = {
    "within_ci": "the published value lies inside our 95 % CI",
    "above_chance": "qualitative: our 95 % CI lies above chance, as the paper reports",
    "not_comparable": "measured on data too different to compare numbers (shown side by side only)",
}
VERDICTS = ("consistent", "differs", "replicated", "not replicated", "not comparable on this data",
            "not measured yet")


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
                             "key": ", ".join(f"{k}={v}" for k, v in labels.items()), "value": float(row[-1])})
        else:
            value = entry["value"]
            rows.append({"id": entry["id"], **common, "key": "qualitative" if value is None else "",
                         "value": math.nan if value is None else float(value)})
    df = pd.DataFrame(rows)
    dup = df.id[df.id.duplicated()].tolist()
    if dup:
        raise ValueError(f"{path}: duplicate claim ids {dup}")
    unknown = set(df.paper) - set(raw["papers"])
    if unknown:
        raise ValueError(f"{path}: claims cite papers not listed under `papers`: {sorted(unknown)}")
    return df, raw["papers"]


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


def verdict(rule: str, published_value: float, m: Measurement) -> str:
    """The verdict of ``rule`` (:data:`RULES`) for one measurement."""
    if rule not in RULES:
        raise ValueError(f"unknown rule {rule!r}; choose from {', '.join(RULES)}")
    if rule == "not_comparable":
        return "not comparable on this data"
    if math.isnan(m.ci_low) or math.isnan(m.ci_high):
        raise ValueError(f"rule {rule!r} needs a CI for claim {m.claim}")
    if rule == "within_ci":
        return "consistent" if m.ci_low <= published_value <= m.ci_high else "differs"
    if math.isnan(m.chance):
        raise ValueError(f"rule 'above_chance' needs the chance level for claim {m.claim}")
    return "replicated" if m.ci_low > m.chance else "not replicated"


def record(chapter: str, page: str, measurements: Iterable[Measurement]) -> pd.DataFrame:
    """Register a page's measurements: checks each claim exists, computes verdicts, writes
    ``results/<chapter>/claims_<page>.csv`` (replacing that page's earlier rows) and returns the rows."""
    rows = []
    for m in measurements:
        pub = published_value(m.claim)
        rows.append({**asdict(m), "page": m.page or f"{chapter}/{page}", "published": pub,
                     "verdict": verdict(m.rule, pub, m)})
    df = pd.DataFrame(rows)
    path = results_dir(chapter) / f"claims_{page.replace('/', '_')}.csv"
    df.to_csv(path, index=False)
    from alignlib.report import register_output

    register_output(path)
    return df


def ledger(root: str | Path | None = None) -> pd.DataFrame:
    """Every published claim with our registered measurement (if any) and its verdict.

    Claims nobody has measured yet have verdict "not measured yet". If two pages registered the same
    claim, both rows are kept.
    """
    root = Path(root) if root else results_dir()
    pub = published()
    measured = [pd.read_csv(p) for p in sorted(root.glob("*/claims_*.csv"))]
    if measured:
        m = pd.concat(measured, ignore_index=True).rename(columns={"claim": "id", "value": "ours"})
        out = pub.merge(m.drop(columns=["published"]), on="id", how="left")
    else:
        out = pub.assign(ours=math.nan, ci_low=math.nan, ci_high=math.nan, rule="", chance=math.nan,
                         our_data="", page="", note="", verdict=math.nan)
    out["verdict"] = out["verdict"].fillna("not measured yet")
    return out
