"""Social welfare functions: many judges' rankings of K candidates -> one collective ranking (numpy only).

Conitzer et al. (arXiv 2404.10271) argue that collective feedback should be aggregated by a social welfare function
(SWF) rather than by pooling; upstream RLCHF implements none, so every rule here is ours, written from the textbook
definitions (Brandt, Conitzer, Endriss, Lang and Procaccia (eds.), Handbook of Computational Social Choice, 2016;
Schulze 2011 for Schulze's method; Tideman 1987 for ranked pairs).

Ballots. A ballot ranks candidates ``0..K-1`` best first as a list whose items are a candidate or a list of
candidates that the voter finds equally good (``[2, [0, 1]]`` = 2 > 0 ~ 1). Candidates a ballot leaves out are
tied last. ``None`` is an abstention: counted in ``n_abstain`` and in nothing else. Indifference adds to neither
N[a][b] nor N[b][a], so a K = 2 "C / equally good" answer is simply ``[[0, 1]]``.

Notation: N[a][b] = (weighted) number of voters ranking a strictly above b; margin M = N - N^T.

Every rule returns a :class:`SocialRanking`: the weak order ``tiers`` it determines (ties kept), the strict
``ranking`` obtained from it by a seeded tie-break (a random priority over candidates drawn from ``seed``), the
rule's ``scores``, its own ``winners`` set, and the margin matrix. The rules are anonymous and neutral; only the
tie-break is not.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from common.config import UserError

Ballot = Sequence[int | Sequence[int]] | None
KEMENY_EXACT_MAX = 8  # 8! = 40,320 orders, enumerated in one vectorised pass


@dataclass(frozen=True)
class Profile:
    """Counted ballots as tier positions. ``positions[v, a]`` = tier of candidate a on ballot v (0 = best)."""

    n_candidates: int
    positions: np.ndarray  # (V, K) int tier index per counted ballot
    weights: np.ndarray  # (V,) how many voters cast each ballot
    n_abstain: float = 0.0

    @classmethod
    def from_ballots(cls, ballots: Sequence[Ballot], n_candidates: int,
                     weights: Sequence[float] | None = None) -> Profile:
        weights = [1.0] * len(ballots) if weights is None else list(weights)
        if len(weights) != len(ballots):
            raise UserError(f"{len(ballots)} ballots but {len(weights)} weights; give one weight per ballot")
        rows, kept, abstain = [], [], 0.0
        for i, (ballot, w) in enumerate(zip(ballots, weights)):
            if ballot is None or len(ballot) == 0:
                abstain += w
                continue
            rows.append(ballot_positions(ballot, n_candidates, where=f"ballot {i}"))
            kept.append(float(w))
        positions = np.array(rows, dtype=int).reshape(len(rows), n_candidates)
        return cls(n_candidates, positions, np.array(kept, dtype=float), abstain)

    @property
    def n_voters(self) -> float:
        return float(self.weights.sum())

    def pairwise(self) -> np.ndarray:
        """N: (K, K), N[a, b] = weighted count of ballots with a strictly above b."""
        above = self.positions[:, :, None] < self.positions[:, None, :]  # (V, K, K)
        return np.einsum("v,vab->ab", self.weights, above.astype(float))

    def margins(self) -> np.ndarray:
        n = self.pairwise()
        return n - n.T


def ballot_positions(ballot: Ballot, n_candidates: int, where: str = "ballot") -> list[int]:
    """Tier index per candidate; refuses unknown or repeated candidates. Unranked candidates share the last tier."""
    pos = [-1] * n_candidates
    for tier, item in enumerate(ballot):
        for cand in ([item] if isinstance(item, (int, np.integer)) else item):
            if not 0 <= int(cand) < n_candidates:
                raise UserError(f"{where}: candidate {cand!r} is outside 0..{n_candidates - 1}")
            if pos[int(cand)] != -1:
                raise UserError(f"{where}: candidate {cand} appears twice in {list(ballot)!r}")
            pos[int(cand)] = tier
    last = len(ballot)
    return [p if p != -1 else last for p in pos]


@dataclass
class SocialRanking:
    rule: str
    ranking: list[int]  # strict order, best first, after the seeded tie-break; refines `tiers`
    tiers: list[list[int]]  # weak order the rule itself determines (ties kept)
    scores: np.ndarray  # (K,) the rule's score, higher is better (meaning per rule, see its docstring)
    winners: list[int]  # the rule's own winner set (before tie-breaking)
    margins: np.ndarray  # (K, K) M[a, b] = N[a, b] - N[b, a]
    n_voters: float
    n_abstain: float
    extras: dict = field(default_factory=dict)

    @property
    def winner(self) -> int:
        return self.ranking[0]

    @property
    def tied_top(self) -> bool:
        return len(self.winners) > 1


def tie_priority(n_candidates: int, seed: int) -> np.ndarray:
    """(K,) rank of each candidate in a seeded random order; the lower wins a tie."""
    order = np.random.default_rng(seed).permutation(n_candidates)
    prio = np.empty(n_candidates, dtype=int)
    prio[order] = np.arange(n_candidates)
    return prio


def _from_scores(rule: str, profile: Profile, scores: np.ndarray, seed: int, **extras) -> SocialRanking:
    """Tiers = groups of equal score (best first); ties inside a tier broken by the seeded priority."""
    prio = tie_priority(profile.n_candidates, seed)
    levels = sorted({round(float(s), 9) for s in scores}, reverse=True)
    tiers = [sorted((a for a in range(len(scores)) if round(float(scores[a]), 9) == lv), key=lambda a: prio[a])
             for lv in levels]
    ranking = [a for tier in tiers for a in tier]
    return SocialRanking(rule, ranking, tiers, np.asarray(scores, dtype=float), sorted(tiers[0]),
                         profile.margins(), profile.n_voters, profile.n_abstain, dict(extras))


def plurality(profile: Profile, seed: int = 0) -> SocialRanking:
    """Score = first places; a voter with t candidates tied first gives each 1/t."""
    top = profile.positions == profile.positions.min(axis=1, keepdims=True)  # (V, K)
    share = top / top.sum(axis=1, keepdims=True)
    scores = profile.weights @ share if len(share) else np.zeros(profile.n_candidates)
    return _from_scores("plurality", profile, scores, seed)


def borda(profile: Profile, seed: int = 0) -> SocialRanking:
    """Score = Σ_b N[a][b] + ½·#(a ~ b): K − 1 − position on strict ballots, averaged over ties."""
    n = profile.pairwise()
    tied = profile.n_voters - n - n.T
    np.fill_diagonal(tied, 0.0)
    return _from_scores("borda", profile, n.sum(axis=1) + 0.5 * tied.sum(axis=1), seed)


def copeland(profile: Profile, seed: int = 0) -> SocialRanking:
    """Score = #{b: M[a][b] > 0} − #{b: M[a][b] < 0}."""
    m = profile.margins()
    return _from_scores("copeland", profile, (m > 0).sum(axis=1) - (m < 0).sum(axis=1).astype(float), seed)


def maximin(profile: Profile, seed: int = 0) -> SocialRanking:
    """Score = min_{b ≠ a} M[a][b] (the margins variant; equals min N[a][b] up to order on complete strict ballots)."""
    m = profile.margins().copy()
    np.fill_diagonal(m, np.inf)
    scores = m.min(axis=1) if profile.n_candidates > 1 else np.zeros(1)
    return _from_scores("maximin", profile, scores, seed)


def kemeny_young(profile: Profile, seed: int = 0) -> SocialRanking:
    """The order(s) maximising Σ_{a before b} N[a][b] (= minimum total Kendall-τ distance to the ballots).

    Exact for K ≤ 8 by enumerating every order. Several optimal orders: ``winners`` = every candidate first in some
    optimal order; ``tiers`` merge candidates whose position differs between optimal orders; ``ranking`` is the
    optimal order that is best under the seeded priority (compared lexicographically).
    Beyond K = 8 (NP-hard) a documented heuristic: start from the Borda order and apply improving single-candidate
    moves (remove and reinsert anywhere) until none helps; a local optimum, reported with ``extras['exact']=False``
    and singleton tiers.
    """
    k = profile.n_candidates
    n = profile.pairwise()
    prio = tie_priority(k, seed)
    if k > KEMENY_EXACT_MAX:
        order = _kemeny_local_search(n, borda(profile, seed).ranking)
        return SocialRanking("kemeny_young", order, [[a] for a in order], _position_scores(order),
                             [order[0]], profile.margins(), profile.n_voters, profile.n_abstain,
                             {"exact": False, "agreement": _agreement(n, order)})
    perms = np.array(list(itertools.permutations(range(k))), dtype=int)  # (K!, K)
    i, j = np.triu_indices(k, 1)
    agree = n[perms[:, i], perms[:, j]].sum(axis=1)  # (K!,)
    best = perms[np.isclose(agree, agree.max())]  # (n_opt, K)
    chosen = min(best.tolist(), key=lambda order: [prio[a] for a in order])
    where = np.argsort(best, axis=1)  # (n_opt, K) position of each candidate in each optimal order
    lo, hi = where.min(axis=0), where.max(axis=0)
    tiers, cur, reach = [], [], -1
    for pos, cand in enumerate(chosen):
        if cur and pos > reach:
            tiers.append(cur)
            cur = []
        cur.append(cand)
        reach = max(reach, hi[cand])
    tiers.append(cur)
    scores = -lo.astype(float)
    return SocialRanking("kemeny_young", chosen, tiers, scores, sorted({int(o[0]) for o in best}), profile.margins(),
                         profile.n_voters, profile.n_abstain,
                         {"exact": True, "n_optimal": len(best), "agreement": float(agree.max())})


def _agreement(n: np.ndarray, order: list[int]) -> float:
    return float(sum(n[a, b] for x, a in enumerate(order) for b in order[x + 1:]))


def _position_scores(order: list[int]) -> np.ndarray:
    scores = np.empty(len(order))
    scores[order] = -np.arange(len(order), dtype=float)
    return scores


def _kemeny_local_search(n: np.ndarray, order: list[int]) -> list[int]:
    order, best = list(order), _agreement(n, order)
    improved = True
    while improved:
        improved = False
        for a in list(order):
            rest = [c for c in order if c != a]
            for pos in range(len(order)):
                cand = rest[:pos] + [a] + rest[pos:]
                value = _agreement(n, cand)
                if value > best + 1e-9:
                    order, best, improved = cand, value, True
    return order


def schulze(profile: Profile, seed: int = 0) -> SocialRanking:
    """Strongest paths P (a path is as strong as its weakest link; links = positive margins); a beats b iff
    P[a][b] > P[b][a]. Score = number of candidates beaten (a linear extension of the Schulze order, since the
    relation is transitive); ``winners`` = the candidates nobody beats."""
    k = profile.n_candidates
    m = profile.margins()
    p = np.where(m > 0, m, 0.0)
    for via in range(k):  # Floyd–Warshall on the widest-path semiring
        p = np.maximum(p, np.minimum(p[:, via:via + 1], p[via:via + 1, :]))
    np.fill_diagonal(p, 0.0)
    beats = p > p.T
    res = _from_scores("schulze", profile, beats.sum(axis=1).astype(float), seed, strongest_paths=p.tolist())
    res.winners = [a for a in range(k) if not beats[:, a].any()]
    return res


def ranked_pairs(profile: Profile, seed: int = 0) -> SocialRanking:
    """Lock majority pairs (a, b) with M[a][b] > 0 from strongest to weakest, skipping any that would close a
    cycle; equal margins are ordered by the seeded priority of (winner, loser). Score = number of candidates below
    a in the locked graph; ``winners`` = its sources (for this tie-break; pref_voting's set ranges over all)."""
    k = profile.n_candidates
    m = profile.margins()
    prio = tie_priority(k, seed)
    edges = sorted(((a, b) for a in range(k) for b in range(k) if m[a, b] > 0),
                   key=lambda e: (-m[e], prio[e[0]], prio[e[1]]))
    reach = np.eye(k, dtype=bool)  # reach[a, b]: a path a -> b is locked (reflexive)
    locked = []
    for a, b in edges:
        if reach[b, a]:
            continue
        locked.append((int(a), int(b)))
        reach |= reach[:, a:a + 1] & reach[b:b + 1, :]
    below = reach.sum(axis=1) - 1
    res = _from_scores("ranked_pairs", profile, below.astype(float), seed, locked=locked)
    res.winners = [a for a in range(k) if not any(b == a for _, b in locked)]
    return res


def majority(profile: Profile, seed: int = 0) -> SocialRanking:
    """Two candidates: the one more voters prefer (May's theorem: every sensible SWF reduces to this at K = 2)."""
    if profile.n_candidates != 2:
        raise UserError(f"majority-of-pairs needs exactly 2 candidates, got {profile.n_candidates}; "
                        "use a K-candidate rule (borda, schulze, ...)")
    n = profile.pairwise()
    return _from_scores("majority", profile, np.array([n[0, 1], n[1, 0]]), seed)


SWFS: dict[str, Callable[[Profile, int], SocialRanking]] = {
    "plurality": plurality, "borda": borda, "copeland": copeland, "maximin": maximin,
    "kemeny_young": kemeny_young, "schulze": schulze, "ranked_pairs": ranked_pairs, "majority": majority,
}
CONDORCET_CONSISTENT = ("copeland", "maximin", "kemeny_young", "schulze", "ranked_pairs")


def aggregate(profile: Profile, rule: str, seed: int = 0) -> SocialRanking:
    if rule not in SWFS:
        raise UserError(f"unknown social welfare function {rule!r}; known: {sorted(SWFS)}")
    return SWFS[rule](profile, seed)


def condorcet_winner(profile: Profile) -> int | None:
    m = profile.margins()
    for a in range(profile.n_candidates):
        if all(m[a, b] > 0 for b in range(profile.n_candidates) if b != a):
            return a
    return None


def kendalls_w(profile: Profile) -> float:
    """Kendall's coefficient of concordance with the tie correction, over the counted (weighted) ballots.

    W = 12 S / (m²(n³ − n) − m Σ_j T_j), S = Σ_i (R_i − R̄)², R_i = summed (average-)rank of item i over the m
    judges, T_j = Σ_groups (t³ − t) over ballot j's ties. 1 = all judges agree, 0 = no agreement. NaN when fewer
    than two judges or candidates.
    """
    k, m = profile.n_candidates, profile.n_voters
    if k < 2 or m < 2:
        return float("nan")
    ranks, ties = [], []
    for pos in profile.positions:
        # average rank (1-based) of each candidate given the tier structure of this ballot
        r = np.array([(pos < p).sum() + ((pos == p).sum() + 1) / 2 for p in pos])
        ranks.append(r)
        ties.append(sum(t**3 - t for t in np.unique(pos, return_counts=True)[1]))
    ranks_arr = np.array(ranks)  # (V, K)
    total = profile.weights @ ranks_arr  # (K,)
    s = float(((total - total.mean()) ** 2).sum())
    denom = m**2 * (k**3 - k) - m * float(profile.weights @ np.array(ties, dtype=float))
    return s * 12 / denom if denom > 0 else float("nan")
