"""Matplotlib figures drawn off-screen and saved atomically.

Figures use matplotlib's Agg canvas directly (no `pyplot`, no display), so
plotting works on machines without a display and never changes the
process's matplotlib backend.
"""

from dim_keras import atomic


def new_figure(width, height):
    """A figure of `width` x `height` inches on an Agg canvas.

    Args:
        width: float, inches.
        height: float, inches.

    Returns:
        A `matplotlib.figure.Figure` at 100 dpi.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure, path, rect=None):
    """Lays a figure out and writes it as a PNG, atomically.

    Args:
        figure: a figure from `new_figure`.
        path: str, the PNG to write.
        rect: optional `(left, bottom, right, top)` that `tight_layout`
            fits the axes in (room for a figure legend).
    """
    if rect is None:
        figure.tight_layout()
    else:
        figure.tight_layout(rect=rect)
    atomic.save(path, lambda tmp: figure.savefig(tmp, format="png"))
