"""`Method`: the one value that says how neighbours are found.

Either classic kNN (raw pixels and one metric of `knn_core.search.METRICS`)
or a recipe (`Recipe`, usually a named preset: deskew, blur, L3, shifts,
IDM). Everything that searches (`KNNClassifier`, `neighbor_lists`, the
pages and the command line) takes a Method, or anything `Method.parse`
reads: a metric name, a preset name, a Recipe, a dict or JSON of recipe
fields.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Optional, Union

from ..errors import ParameterError
from ..search import METRICS
from .recipes import PRESETS, Preset, Recipe, resolve_recipe
from .search import MethodSearch, MetricSearch

CLASSIC_P = 3.0  # classic minkowski's power: L3, the classic choice

# Cost of a first (uncached) classic search on this project's 2-core machines: (seconds per query,
# distance pairs per second), fitted to measured runs with 50 neighbours: test set vs 60,000
# euclidean ~5 s, leave-one-out ~30 s, 10,000 queries vs 1,000 digits ~2.5 s (selecting 50
# neighbours has a floor per query), cosine ~3x euclidean, manhattan minutes and minkowski p=3
# ~50 min on the full set (scikit-learn's brute force). Rough: it is for a warning, not a promise.
_METRIC_COST = {"euclidean": (2e-4, 2e8), "cosine": (8e-4, 6e7), "manhattan": (0.0, 3e6), "minkowski": (0.0, 2e5)}


@dataclass(frozen=True)
class Method:
    """How neighbours are found: classic kNN with a metric, or a recipe.

    Build one with `Method.parse` ("euclidean", "idm", a Recipe...) or
    `Method.classic(metric, p)`. Frozen and hashable: it keys caches.
    """

    metric: str = "euclidean"  # classic kNN's metric (unused with a recipe)
    p: float = CLASSIC_P  # classic minkowski's power
    recipe: Optional[Recipe] = None  # None: classic kNN on raw pixels
    preset: Optional[str] = None  # the preset's name when the recipe is one

    def __post_init__(self):
        if self.recipe is None:
            if self.metric not in METRICS:
                raise ParameterError(f"unknown metric {self.metric!r}; choose one of {', '.join(METRICS)}")
            if isinstance(self.p, bool) or not isinstance(self.p, (int, float)) or not self.p >= 1:
                raise ParameterError(f"minkowski needs a power p >= 1; got p={self.p!r}")
            # p matters to minkowski only: other metrics keep the default, so equal searches compare equal.
            object.__setattr__(self, "p", float(self.p) if self.metric == "minkowski" else CLASSIC_P)
        elif self.preset is not None and self.preset not in PRESETS:
            raise ParameterError(f"unknown method {self.preset!r}; choose one of {', '.join(PRESETS)}")

    @classmethod
    def classic(cls, metric: str = "euclidean", p: float = CLASSIC_P) -> "Method":
        return cls(metric=metric, p=p)

    @classmethod
    def parse(cls, value: Union["Method", Recipe, Preset, dict, str]) -> "Method":
        """A Method from a Method, a metric name, a preset name, a Recipe, a Preset, a dict or JSON of recipe fields."""
        if isinstance(value, Method):
            return value
        if isinstance(value, Preset):
            return cls(recipe=value.recipe, preset=value.name)
        if isinstance(value, str) and value in METRICS:
            return cls.classic(value)
        if isinstance(value, str) and value in PRESETS:
            return cls(recipe=PRESETS[value].recipe, preset=value)
        if isinstance(value, str) and not value.lstrip().startswith("{"):
            raise ParameterError(f"unknown method {value!r}; choose a metric ({', '.join(METRICS)}) "
                                 f"or a preset ({', '.join(PRESETS)})")
        return cls(recipe=resolve_recipe(value))

    # -- what it is
    @property
    def is_classic(self) -> bool:
        return self.recipe is None

    @property
    def name(self) -> str:
        """Short name: the metric, the preset, or the recipe's description."""
        if self.recipe is None:
            return self.metric
        return self.preset or self.recipe.describe()

    @property
    def label(self) -> str:
        """For people: 'euclidean', 'minkowski (p=3)', a preset's label."""
        if self.recipe is None:
            return f"minkowski (p={self.p:g})" if self.metric == "minkowski" else self.metric
        return PRESETS[self.preset].label if self.preset else self.recipe.describe()

    @property
    def distance_name(self) -> str:
        """The distance the neighbours are ranked by, e.g. 'euclidean distance', 'IDM distance'."""
        return f"{self.label} distance" if self.recipe is None else self.recipe.distance_name

    @property
    def copies(self) -> int:
        """How many times one training digit can be in a neighbour list (shifted copies)."""
        return 1 if self.recipe is None else self.recipe.copies

    @property
    def k(self) -> int:
        """The k to use when none is given: the preset's (chosen on validation), else 5."""
        return PRESETS[self.preset].k if self.preset else 5

    @property
    def weights(self) -> str:
        """The vote weights to use when none are given: the preset's, else uniform."""
        return PRESETS[self.preset].weights if self.preset else "uniform"

    def cache_id(self) -> str:
        """What a cached neighbour list of this method depends on (not the preset's name)."""
        if self.recipe is None:
            return json.dumps({"metric": self.metric, "p": self.p if self.metric == "minkowski" else None})
        d = self.recipe.to_dict()
        if not d["tangent_weight"]:  # IDM alone: the lists cached before the tangent distance existed stay valid
            for name in ("tangent_weight", "tangent_penalty", "tangent_candidates"):
                del d[name]
        if not d["affine_copies"] and not d["p2d_scale"]:  # likewise for the lists before the extra matches
            for name in ("affine_copies", "p2d_scale", "p2d_window", "p2d_deviation", "p2d_penalty", "match_candidates"):
                del d[name]
        return json.dumps({"recipe": d}, sort_keys=True)

    # -- what it does
    def make_search(self, n_jobs: int = 2) -> Union[MetricSearch, MethodSearch]:
        """An unfitted search of this method (`fit(training images)`, then `kneighbors`)."""
        if self.recipe is None:
            return MetricSearch(self.metric, p=self.p, n_jobs=n_jobs)
        return MethodSearch(self.recipe, n_jobs=n_jobs)

    def estimate_seconds(self, n_train: int, n_queries: int) -> float:
        """Rough wall time of a first search with 50 neighbours on 2 cores (for a warning, not a promise).

        Recipes: fitted to the benchmark's figures for the full test set: deskew ~10 s,
        1-px shifts + L3 ~1 min, 2-px shifts + L3 ~8 min, IDM (300 candidates) ~4 min.
        """
        r = self.recipe
        if r is None:
            per_query, pairs_per_second = _METRIC_COST[self.metric]
            return 0.5 + n_queries * per_query + n_train * n_queries / pairs_per_second
        copies = (2 * r.shifts + 1) ** 2
        seconds = 1.0 + 4e-5 * (n_train + n_queries)  # preprocessing
        seconds += n_queries * 2e-4 + n_train * n_queries / 2e8 * copies * (1 + copies / 5)
        if r.rerank == "idm":
            seconds += n_queries * r.candidates * 8e-5
            if r.extra_matches:  # IDM on 6 copies and P2DHMDM (~3.5 IDMs) of each of the match candidates
                seconds += n_queries * r.match_candidates * 8e-5 * (6 * r.affine_copies + 3.5 * bool(r.p2d_scale))
        elif r.uses_lp:
            seconds += n_queries * r.candidates * copies * 2e-6
        return seconds
