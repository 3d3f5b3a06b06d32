"""Where time runs in the alert picture (``images``): the review page puts its playhead there
and seeks where it is clicked."""

WIDTH, HEIGHT = 800, 360
LEFT, RIGHT = 64, 790  # x of the panels' left and right edges: snippet start and end


def time_axis() -> list[float]:
    """The panels' left and right edges as fractions of the picture's width."""
    return [LEFT / WIDTH, RIGHT / WIDTH]
