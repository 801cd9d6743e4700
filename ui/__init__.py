"""Streamlit helpers shared by the pages of kNN Digit Lab: ``import ui``, then ``ui.<name>``.

Pages and tests use only the names listed in ``__all__``; the code is one hop away:

- ``ui/settings.py``: the shared sidebar settings, mirrored into the URL
  (:func:`current_settings`, :class:`Settings`, :func:`shared_sidebar`).
- ``ui/resources.py``: what every session shares, built once per server process
  (the dataset, fitted classifiers, :func:`nearest`).
- ``ui/jobs.py``: the analysis pages' neighbour lists, from memory, the disk cache or
  the server's one job queue (:func:`neighbor_lists`).
- ``ui/digits.py``: digit pictures, grids and neighbour captions.
- ``ui/charts.py``: the vote chart and the vote colours.
- ``ui/canvas.py``: the drawing canvas and what a drawing becomes.
- ``ui/explain.py``: refusing non-digits (:func:`abstain_judgement`, :func:`abstain_message`) and
  "Why this answer?" (:func:`explain_section`: differences, pixel contributions, IDM field, why not).
- ``ui/cache_warnings.py``: on-disk cache problems, told once per session.
- ``ui/safe.py``: what a user sent never becomes markup or a crash (:func:`md_escape`,
  :func:`valid_index`, :func:`error_message`).
- ``ui/prediction.py``: a drawing's prediction as the Draw page shows it (:func:`show_prediction`).
- ``ui/radar.py``: the Neighbour vote view, the radar and the tally (:func:`show_neighbour_vote`).
- ``ui/room.py``: the class room's page side: the store, links, QR code, the wall (:func:`room_store`).
- ``ui/navigation.py``: the page menu (:func:`page_menu`) and how a page file runs inside
  app.py, even when Streamlit's legacy ``pages/`` mode runs it by itself (:func:`run_page`).
"""
from . import fair
from .cache_warnings import show_cache_warnings
from .canvas import (
    DRAWING_MIN_STROKE,
    PEN_DEFAULT,
    DrawingError,
    drawing_canvas,
    drawing_from_bytes,
    drawing_stages,
    drawing_to_mnist,
    drawn_digit,
)
from .charts import VOTE_CHART_CONFIG, WINNER_COLOUR, vote_bars_html, vote_chart
from .digits import (
    GREEN,
    RED,
    digit_grid,
    digit_grid_html,
    digit_tile,
    digit_with_neighbours,
    digits_beside_neighbours_html,
    enlarge,
    neighbour_captions,
    neighbour_grid,
    png_data_uri,
    rgb_css,
    shift_arrows,
    to_uint8,
)
from .explain import abstain_judgement, abstain_message, calibration_hint, explain_section, neighbours_from_lists
from .jobs import (
    CONFIRM_SECONDS,
    QUEUE,
    fill_cache_command,
    fmt_seconds,
    forget_loaded,
    max_browser_seconds,
    neighbor_lists,
)
from .navigation import page_menu, run_page, scroll_into_view
from .prediction import CAPTION_STYLE, Prediction, explain_expander, show_prediction
from .radar import EXTRA_SHOWN, LABEL_COLOURS, QUERY_COLOUR, radial_figure, show_neighbour_vote, tally_figure
from .resources import (
    SERVER_BLAS_THREADS,
    Neighbours,
    browser_connected,
    classifier,
    get_dataset,
    get_fitted,
    get_subset,
    nearest,
    session_owner,
    start_server,
)
from .room import (
    CLASS_PAGE,
    ROOM_PARAM,
    TEACHER_PARAM,
    WALL_REFRESH_S,
    WALL_SHOWN,
    Wall,
    code_html,
    drawing_caption,
    drawings_html,
    fresh_room,
    join_link,
    labelled,
    my_drawings,
    qr_html,
    read_wall,
    remember_my_drawing,
    room_store,
    send_id,
    student_id,
    tally_html,
    teacher_link,
    wall_html,
)
from .safe import error_message, md_escape, shown, valid_index
from .settings import (
    CLASSIC,
    K_MAX,
    K_MIN,
    METHODS,
    MINKOWSKI_P,
    SETTINGS,
    TRAIN_SIZES,
    Settings,
    cli_command,
    current_settings,
    search_label,
    set_setting,
    settings_caption,
    settings_from_query,
    shared_sidebar,
    show_command,
    with_search,
)

__all__ = [
    # settings
    "CLASSIC", "K_MAX", "K_MIN", "METHODS", "MINKOWSKI_P", "SETTINGS", "TRAIN_SIZES",
    "Settings", "cli_command", "current_settings", "search_label", "set_setting", "settings_caption",
    "settings_from_query", "shared_sidebar", "show_command", "with_search",
    # resources
    "SERVER_BLAS_THREADS", "Neighbours", "browser_connected", "classifier", "get_dataset", "get_fitted", "get_subset", "nearest",
    "start_server",
    # jobs
    "CONFIRM_SECONDS", "QUEUE", "fill_cache_command", "fmt_seconds", "forget_loaded", "max_browser_seconds",
    "neighbor_lists", "session_owner",
    # digits
    "GREEN", "RED", "digit_grid", "digit_grid_html", "digit_tile", "digit_with_neighbours",
    "digits_beside_neighbours_html", "enlarge", "neighbour_captions", "neighbour_grid", "png_data_uri", "rgb_css",
    "shift_arrows", "to_uint8",
    # charts
    "VOTE_CHART_CONFIG", "WINNER_COLOUR", "vote_bars_html", "vote_chart",
    # canvas
    "DRAWING_MIN_STROKE", "PEN_DEFAULT", "DrawingError", "drawing_canvas", "drawing_from_bytes",
    "drawing_stages", "drawing_to_mnist", "drawn_digit",
    # abstain and explain
    "abstain_judgement", "abstain_message", "calibration_hint", "explain_section", "neighbours_from_lists",
    # cache warnings
    "show_cache_warnings",
    # navigation
    "fair", "page_menu", "run_page", "scroll_into_view",
    # a drawing's prediction (Draw page, class room) and its neighbour vote (Neighbour vote page, class room)
    "CAPTION_STYLE", "Prediction", "explain_expander", "show_prediction",
    "EXTRA_SHOWN", "LABEL_COLOURS", "QUERY_COLOUR", "radial_figure", "show_neighbour_vote", "tally_figure",
    # the class room
    "CLASS_PAGE", "ROOM_PARAM", "TEACHER_PARAM", "WALL_REFRESH_S", "WALL_SHOWN", "Wall", "code_html",
    "drawing_caption", "drawings_html", "fresh_room", "join_link", "labelled", "my_drawings", "qr_html",
    "read_wall", "remember_my_drawing", "room_store", "send_id", "student_id", "tally_html", "teacher_link", "wall_html",
    # safe output
    "error_message", "md_escape", "shown", "valid_index",
]
