"""The Dataset page: look at the digits before classifying them.

A grid of sample digits with their labels (reshuffled on demand, or all of one
class), how many digits of each class the training and test sets hold, the
mean digit of each class, and any digit picked by its index, shown large.
Nothing here is heavy: the page only indexes the arrays (the class means, one
pass over the training set, are computed once per server process).

Everything is in :func:`dataset_page`; tests hand it a small dataset.
"""
from __future__ import annotations

import numpy as np
import streamlit as st

import ui

ROWS, COLS = 5, 10  # the sample grid
SPLITS = {"train": "Training set", "test": "Test set"}
TRAIN_COLOUR, TEST_COLOUR = "#2E7D32", "#90A4AE"
VAL_NOTE = "validation split"


def dataset_page(ds=None) -> None:
    """Render the page. ds: a knn_core Dataset (default: the app's MNIST)."""
    ui.current_settings()  # the shared sidebar (this page has no use for its values)
    ds = ds if ds is not None else ui.get_dataset()
    st.title("🔍 The dataset")
    n_train, n_test = len(ds.train_labels), len(ds.test_labels)
    h, w = ds.train_images.shape[1:]
    st.caption(
        f"{n_train:,} training digits (the last {ds.n_val:,} of them are the validation split, "
        f"used to choose k) and {n_test:,} test digits; each {h}×{w} pixels of grey levels "
        f"0–255, ink bright on black. Source: {ds.source}."
    )

    _samples(ds)
    st.divider()
    left, right = st.columns([3, 2], gap="large")
    with left:
        _class_counts(ds)
    with right:
        _pick(ds)
    st.divider()
    _mean_digits(ds)


# ----------------------------------------------------------------------------- samples


def _samples(ds) -> None:
    st.subheader("Sample digits")
    c1, c2, c3 = st.columns([2, 2, 1], vertical_alignment="bottom")
    split = c1.segmented_control("From", list(SPLITS), format_func=SPLITS.get, default="train",
                                 key="ds_sample_split") or "train"
    classes = ["all"] + [int(c) for c in np.unique(ds.train_labels)]
    only = c2.selectbox("Class", classes, key="ds_sample_class",
                        format_func=lambda c: "all classes" if c == "all" else f"only {c}s")
    state = st.session_state
    state.setdefault("ds_seed", 0)
    if c3.button("🔀 Reshuffle", key="ds_reshuffle", use_container_width=True):
        state["ds_seed"] += 1

    images, labels = _split(ds, split)
    pool = np.arange(len(labels)) if only == "all" else np.flatnonzero(labels == only)
    if len(pool) == 0:
        st.info(f"The {SPLITS[split].lower()} has no {only}s.")
        return
    rng = np.random.default_rng([state["ds_seed"], 0 if split == "train" else 1,
                                 0 if only == "all" else int(only) + 1])
    pick = np.sort(rng.choice(pool, size=min(ROWS * COLS, len(pool)), replace=False))
    what = "all classes" if only == "all" else f"class {only}"
    st.caption(f"{len(pick)} random digits of {what} from the {SPLITS[split].lower()} "
               f"({len(pool):,} to choose from), in index order; caption: label · index.")
    captions = [f"**{lab}** · #{i}" for i, lab in zip(pick.tolist(), labels[pick].tolist())]
    with st.container(key="ds_sample_grid"):
        for r in range(0, len(pick), COLS):  # one row of COLS per grid: a steady 5 x 10 on wide screens
            ui.digit_grid(images[pick[r : r + COLS]], captions[r : r + COLS], scale=2)


def _split(ds, split: str):
    return (ds.train_images, ds.train_labels) if split == "train" else (ds.test_images, ds.test_labels)


# ------------------------------------------------------------------------ class counts


def _class_counts(ds) -> None:
    st.subheader("Digits per class")
    classes = np.union1d(np.unique(ds.train_labels), np.unique(ds.test_labels))
    train = np.array([np.count_nonzero(ds.train_labels == c) for c in classes])
    test = np.array([np.count_nonzero(ds.test_labels == c) for c in classes])
    st.plotly_chart(_counts_figure(classes, train, test), config={"displayModeBar": False},
                    key="ds_counts")
    most, least = classes[np.argmax(train)], classes[np.argmin(train)]
    st.caption(f"Training set: most {most}s ({train.max():,}), fewest {least}s ({train.min():,}); "
               f"the classes are roughly, not exactly, balanced.")


def _counts_figure(classes, train, test) -> dict:
    """Train and test counts per class, side by side (a plain plotly dict)."""
    x = [str(c) for c in np.asarray(classes).tolist()]

    def bars(name, counts, colour):
        total = max(int(counts.sum()), 1)
        return {
            "type": "bar", "name": name, "x": x, "y": counts.tolist(), "marker": {"color": colour},
            "customdata": [100 * c / total for c in counts.tolist()],
            "hovertemplate": f"{name}, digit %{{x}}: %{{y:,}} (%{{customdata:.1f}} %)<extra></extra>",
        }

    return {
        "data": [bars("train", train, TRAIN_COLOUR), bars("test", test, TEST_COLOUR)],
        "layout": {
            "barmode": "group", "height": 300, "margin": {"l": 50, "r": 10, "t": 10, "b": 40},
            "xaxis": {"type": "category", "title": {"text": "digit"}},
            "yaxis": {"title": {"text": "digits"}, "rangemode": "tozero"},
            "legend": {"orientation": "h", "y": 1.08, "x": 0},
        },
    }


# ------------------------------------------------------------------------------- pick


def _pick(ds) -> None:
    st.subheader("One digit by its index")
    split = st.segmented_control("Split", list(SPLITS), format_func=SPLITS.get, default="train",
                                 key="ds_pick_split") or "train"
    images, labels = _split(ds, split)
    last = len(labels) - 1
    key = f"ds_pick_index_{split}"  # one per split: each keeps its own limits and value
    index = st.number_input(f"Index (0–{last:,})", min_value=0, max_value=last, value=0, step=1, key=key)
    index = int(min(max(index, 0), last))
    label = int(labels[index])
    where = SPLITS[split].lower()
    if split == "train" and index >= len(ds.train_labels) - ds.n_val:
        where += f" ({VAL_NOTE})"
    img = images[index]
    ink = img > 0
    st.image(ui.digit_tile(img, 10), caption=f"#{index:,} of the {where}: label {label}",
             width=280, output_format="PNG")
    st.caption(f"{int(ink.sum())} of {img.size} pixels carry ink; brightest {int(img.max())}.")


# ------------------------------------------------------------------------- mean digits


@st.cache_data(show_spinner=False, max_entries=4)
def _class_means(fingerprint: str, _ds) -> tuple[np.ndarray, np.ndarray]:
    """(classes, mean training image of each class as floats in [0, 1]); once per dataset."""
    labels = _ds.train_labels
    classes = np.unique(labels)
    images = _ds.train_images
    means = np.stack([images[labels == c].mean(axis=0, dtype=np.float64) for c in classes]) / 255.0
    return classes, means


def _mean_digits(ds) -> None:
    st.subheader("The mean digit of each class")
    classes, means = _class_means(ds.fingerprint, ds)
    # Each mean stretched to its own full range: a class with thin, varied strokes (1) would
    # otherwise look faint beside one whose strokes agree.
    peak = means.reshape(len(means), -1).max(axis=1)
    shown = means / np.maximum(peak, 1e-9)[:, None, None]
    with st.container(key="ds_means"):
        ui.digit_grid(shown, [f"**{c}**" for c in classes.tolist()], scale=3)
    st.caption("Pixel by pixel average of every training digit of the class (brightness stretched per "
               "class). Sharp where writers agree, blurred where they differ; comparing a digit with "
               "these ten averages is the nearest-centroid classifier, kNN's simplest cousin.")


if __name__ == "__main__":  # Streamlit runs page files as __main__; importing (tests) does not render
    ui.run_page(dataset_page)
