"""How digits are compared: classic metrics and the methods beyond them.

- `Method` (method.py): the one value naming how neighbours are found.
- `Recipe`, `Preset`, `PRESETS` (recipes.py): deskew, blur, L3, shifts, IDM.
- `MethodSearch`, `MetricSearch` (search.py): the searches behind a Method; `affine_copies`.
- `lp_distances`, `idm_distances`, `p2dhmdm_distances`, `tangent_distances` (kernels.py): the distance kernels.
"""
from .kernels import (
    displacement_costs,
    idm_distances,
    lp_distances,
    p2dhmdm_distances,
    sobel_gradients,
    tangent_distances,
    tangent_vectors,
)
from .method import CLASSIC_P, Method
from .recipes import BEST_PRESET, MAX_SHIFT, METHOD_METRICS, PRESETS, RERANKS, Preset, Recipe, resolve_recipe
from .search import (
    AFFINE_NAMES,
    MethodSearch,
    MetricSearch,
    Neighbors,
    affine_copies,
    affine_matrices,
    brute_force_neighbors,
    pad_frame,
    prepare_images,
    shift_offsets,
    translate,
)

__all__ = [
    "AFFINE_NAMES", "BEST_PRESET", "CLASSIC_P", "MAX_SHIFT", "METHOD_METRICS", "PRESETS", "RERANKS",
    "Method", "MethodSearch", "MetricSearch", "Neighbors", "Preset", "Recipe",
    "affine_copies", "affine_matrices", "brute_force_neighbors", "displacement_costs", "idm_distances", "lp_distances", "p2dhmdm_distances", "pad_frame",
    "prepare_images", "resolve_recipe",
    "shift_offsets", "sobel_gradients", "tangent_distances", "tangent_vectors", "translate",
]
