"""The held-out split: by conversation (segments of one conversation are near-duplicates, so splitting
by segment would leak the test set into training), stratified by label.

Each group (conversation, or import row/group) gets a stratum: the rarest label among its strong examples
(so conversations carrying a rare label are spread across both sides). Within a stratum the groups are
ordered by a seeded hash and the first ``round(test_fraction * n)`` go to the test side (at least one when
the stratum has two groups or more). Weak examples (thumbs-down) train but are never tested on: a weak
example in a test group is dropped, never moved to training (that would leak its conversation).
"""
from __future__ import annotations

import hashlib
from collections import Counter, defaultdict

from r1desk.core.feedback.dataset import Example


def split_by_group(examples: list[Example], *, test_fraction: float = 0.2,
                   seed: int = 0) -> tuple[list[Example], list[Example]]:
    """(train, test); no group ever appears on both sides."""
    freq = Counter(e.label for e in examples if not e.weak)
    groups: dict[str, list[Example]] = defaultdict(list)
    for e in examples:
        groups[e.group].append(e)
    strata: dict[str, list[str]] = defaultdict(list)
    for g, items in groups.items():
        strong = [e.label for e in items if not e.weak]
        if not strong:
            strata["(weak only)"].append(g)
            continue
        strata[min(set(strong), key=lambda lb: (freq[lb], lb))].append(g)
    test_groups: set[str] = set()
    for stratum, members in strata.items():
        if stratum == "(weak only)":
            continue
        members.sort(key=lambda g: hashlib.sha256(f"{seed}|{g}".encode()).hexdigest())
        take = round(test_fraction * len(members))
        if len(members) >= 2:
            take = min(max(take, 1), len(members) - 1)
        test_groups.update(members[:take])
    train = [e for e in examples if e.group not in test_groups]
    test = [e for e in examples if e.group in test_groups and not e.weak]
    return train, test
