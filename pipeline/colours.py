"""Heatmap colours with readable text: each token's background runs from white to red (for the explained
class) or blue (against it), and its text is black or white, whichever contrasts more. WCAG 2.x contrast
(relative luminance L, ratio (L1 + 0.05) / (L2 + 0.05)): black or white on any background reaches at least
4.58:1, above the 4.5:1 that level AA asks for normal text."""

from __future__ import annotations

NEGATIVE_RGB = (33, 102, 172)  # the ends of ColorBrewer's RdBu scale
POSITIVE_RGB = (178, 24, 43)
BLACK, WHITE = (0, 0, 0), (255, 255, 255)

RGB = tuple[int, int, int]


def relative_luminance(rgb: RGB) -> float:
    """WCAG 2.x relative luminance of an sRGB colour (0..255 channels): 0 for black, 1 for white."""

    def linear(channel: int) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: RGB, b: RGB) -> float:
    """WCAG contrast ratio of two colours, 1..21."""
    la, lb = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def hex_colour(rgb: RGB) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def token_rgb(value: float, scale: float) -> RGB:
    """Background of a token: white -> red (positive) or blue (negative), linear in |value| / scale (the
    review's largest |relevance|)."""
    share = min(abs(value) / scale, 1.0) if scale > 0 else 0.0
    end = POSITIVE_RGB if value > 0 else NEGATIVE_RGB
    return tuple(round(255 + share * (c - 255)) for c in end)


def text_rgb(background: RGB) -> RGB:
    """Black or white, whichever contrasts more with the background."""
    return max((BLACK, WHITE), key=lambda ink: contrast(ink, background))


def token_colour(value: float, scale: float) -> tuple[str, str]:
    """(background, text) CSS colours of a token with this relevance in a review whose largest |relevance|
    is scale."""
    background = token_rgb(value, scale)
    return hex_colour(background), hex_colour(text_rgb(background))
