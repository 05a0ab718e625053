"""Pictures for the image endpoints: real, decodable, and the same for the same seed and prompt.

A generated picture is a two-colour gradient with a few shapes and the prompt written along the
bottom, all drawn from the request's seed: a test can decode it, check its size, and a person can
see which prompt made it. With a transparent background the gradient is left out: the shapes and
the caption float on fully transparent pixels. Rules may script a picture instead (a file, a
colour, a pattern). Edits repaint the uploaded image where the mask is transparent (everywhere
without a mask), variations shift its colours. Pillow draws and encodes: a well-kept library,
with wheels for every platform, imported on first use so that starting a server does not pay
for it.

Drawing is CPU work (tens of milliseconds per megapixel): the pipeline renders image answers in
its worker thread (mockai.pipeline.workload), never on the event loop.
"""

from __future__ import annotations

import io
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mockai.errors import ApiError
from mockai.pipeline.reply import Media

if TYPE_CHECKING:
    from PIL import Image as PILImage

PATTERNS = ("shapes", "solid", "gradient", "stripes", "checkerboard")
FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}
CONTENT_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
# Uploaded pictures are decoded to be edited: one whose header announces more pixels than this
# (a small file can hold a huge picture) is refused before it is decoded (mockai's bound).
MAX_SOURCE_PIXELS = 4096 * 4096
_PALETTE = (
    (230, 57, 70),
    (241, 250, 238),
    (168, 218, 220),
    (69, 123, 157),
    (29, 53, 87),
    (244, 162, 97),
    (42, 157, 143),
    (233, 196, 106),
    (38, 70, 83),
    (231, 111, 81),
    (131, 56, 236),
    (255, 190, 11),
)


@dataclass(frozen=True, slots=True)
class Canvas:
    """What one picture must be: its size, its encoding, and whether it may be transparent."""

    width: int
    height: int
    format: str = "png"  # png | jpeg | webp
    compression: int | None = None  # output_compression (jpeg / webp quality), 0-100
    transparent: bool = False


def pillow() -> None:
    """Import Pillow, or say clearly that the image endpoints need it."""
    try:
        import PIL.Image  # noqa: F401
    except ImportError:  # pragma: no cover - Pillow is a dependency; a broken install
        raise ApiError(
            500,
            "mockai: the image endpoints need Pillow, which is not installed "
            "(pip install pillow, or reinstall mockai-server)",
            type="server_error",
            code="mockai_missing_dependency",
        ) from None


def picture(
    media: Media,
    canvas: Canvas,
    prompt: str,
    index: int,
    *,
    source: bytes | None = None,
    mask: bytes | None = None,
    vary: bool = False,
) -> PILImage.Image:
    """The `index`-th picture for a request: scripted by `media`, edited from `source` (an
    uploaded image, repainted where `mask` is transparent), a variation of it (`vary`), or
    generated from the seed and the prompt."""
    pillow()
    rng = random.Random(media.seed * 1_000_003 + index)
    transparent = canvas.transparent and canvas.format != "jpeg"  # (JPEG has no alpha)
    size = (canvas.width, canvas.height)
    if media.path is not None:
        image = _fit(_open(Path(media.path).read_bytes(), "the rule's image"), size)
    elif media.color is not None or media.pattern is not None or media.colors:
        image = _pattern(media, size, rng)
    elif source is not None:
        image = _fit(_open(source, "image"), size)
        image = _vary(image, rng) if vary else _repaint(image, mask, prompt, rng)
    else:
        image = _generated(size, prompt, rng, transparent=transparent)
    return image.convert("RGBA" if transparent else "RGB")


def encode(image: PILImage.Image, canvas: Canvas) -> bytes:
    """The picture in the requested format (JPEG and WebP at `compression` quality)."""
    out = io.BytesIO()
    options: dict[str, object] = {}
    if canvas.format == "png":
        options["compress_level"] = 1  # fast: answers are decoded by tests, not archived
    else:
        options["quality"] = 90 if canvas.compression is None else max(canvas.compression, 1)
    if canvas.format == "webp":
        options["method"] = 0  # the fastest encoder setting
    image.save(out, FORMATS[canvas.format], **options)
    return out.getvalue()


def partial(image: PILImage.Image, step: int, steps: int, canvas: Canvas) -> bytes:
    """The `step`-th of `steps` partial images of a stream: the final picture, coarser the
    earlier it comes (as the API's partial images sharpen towards the final one)."""
    from PIL import Image

    factor = 2 ** (steps - step + 2)  # 1/32, 1/16, 1/8 ... of the size, then back up
    small = image.resize(
        (max(image.width // factor, 1), max(image.height // factor, 1)), Image.Resampling.BOX
    )
    return encode(small.resize(image.size, Image.Resampling.NEAREST), canvas)


def check_source(data: bytes, param: str) -> tuple[int, int]:
    """An uploaded picture's size, read from its header; the API's 400 when it is not a
    picture, and mockai's when it is too large to decode."""
    pillow()
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
    except Image.DecompressionBombError:  # (a header announcing ~179 million pixels or more)
        raise _too_large(param, "announces more pixels than Pillow opens") from None
    except Exception:  # (whatever Pillow's decoders raise for bytes that are no picture: _open)
        raise _invalid(param) from None
    if width * height > MAX_SOURCE_PIXELS:
        raise _too_large(param, f"is {width}x{height}")
    return width, height


def has_alpha(data: bytes) -> bool:
    """Whether a picture (checked by `check_source` already) has an alpha channel or a
    transparent colour, read from its header: what a mask must have, its transparent pixels
    marking where to edit."""
    pillow()
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            return bool(image.has_transparency_data)
    except Exception:  # (as check_source: bytes that are no picture have none)
        return False


def _too_large(param: str, what: str) -> ApiError:
    return ApiError(
        400,
        f"Invalid '{param}': the image {what}; mockai edits pictures of at most "
        f"{MAX_SOURCE_PIXELS:,} pixels (4096x4096).",
        param=param,
        code="mockai_image_too_large",
    )


def check_color(value: str) -> None:
    """A colour Pillow understands (`red`, `#f80`, `rgb(255,128,0)`); ValueError otherwise."""
    from PIL import ImageColor

    ImageColor.getrgb(value)


def check_picture_file(path: Path) -> None:
    """A picture file a rule names: it must exist and be a picture (ValueError says why)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.verify()
    except FileNotFoundError:
        raise ValueError(f"{path} does not exist") from None
    except Exception as error:  # (whatever Pillow's decoders raise: see _open)
        raise ValueError(f"{path} is not a picture Pillow can read ({error})") from None


# --- drawing ----------------------------------------------------------------------------------


def _invalid(param: str) -> ApiError:
    return ApiError(
        400,
        f"Invalid image file or mode for {param}, please check your image file.",
        param=param,
        code="invalid_image_file",
    )


def _open(data: bytes, param: str) -> PILImage.Image:
    from PIL import Image

    try:
        image = Image.open(io.BytesIO(data))
        if image.width * image.height > MAX_SOURCE_PIXELS:
            raise _invalid(param)
        image.load()
    except ApiError:
        raise
    # An upload is anyone's bytes, and Pillow's decoders refuse bad ones with whatever they
    # meet first: UnidentifiedImageError, OSError, ValueError, and also SyntaxError (a PNG
    # chunk out of place), struct.error, EOFError, DecompressionBombError (a plain Exception).
    # Each is the API's 400 for a file that is not a picture, never a 500.
    except Exception:
        raise _invalid(param) from None
    return image.convert("RGBA")


def _fit(image: PILImage.Image, size: tuple[int, int]) -> PILImage.Image:
    """Scaled to cover `size` and centre-cropped (no distortion, no borders)."""
    from PIL import ImageOps

    return ImageOps.fit(image, size)


def _colour(rng: random.Random) -> tuple[int, int, int]:
    return _PALETTE[rng.randrange(len(_PALETTE))]


def _generated(
    size: tuple[int, int], prompt: str, rng: random.Random, *, transparent: bool = False
) -> PILImage.Image:
    from PIL import Image

    start = _colour(rng)
    end = next(c for c in iter(lambda: _colour(rng), None) if c != start)
    across = rng.random() < 0.5
    if not transparent:
        image = _gradient(size, start, end, across)
        _draw(image, prompt, rng)
        return image.convert("RGBA")
    # No gradient, and a clear margin all round: however the shapes and the caption fall (a
    # small picture is all caption), some pixels stay transparent.
    margin = max(min(size) // 16, 1)
    inner = Image.new("RGBA", (size[0] - 2 * margin, size[1] - 2 * margin), (0, 0, 0, 0))
    _draw(inner, prompt, rng)
    image = Image.new("RGBA", size, (0, 0, 0, 0))
    image.paste(inner, (margin, margin))
    return image


def _draw(image: PILImage.Image, prompt: str, rng: random.Random) -> None:
    """A few shapes and the caption, over what `image` holds."""
    from PIL import ImageDraw

    draw = ImageDraw.Draw(image, "RGBA")
    width, height = image.size
    for _ in range(rng.randint(3, 7)):
        box = _box(rng, width, height)
        fill = (*_colour(rng), rng.randint(140, 230))
        if rng.random() < 0.5:
            draw.ellipse(box, fill=fill)
        else:
            draw.rectangle(box, fill=fill)
    _caption(draw, prompt, image.size)


def _gradient(
    size: tuple[int, int], start: tuple[int, int, int], end: tuple[int, int, int], across: bool
) -> PILImage.Image:
    from PIL import Image

    ramp = Image.linear_gradient("L")  # 256x256, black at the top to white at the bottom
    if across:
        ramp = ramp.rotate(90)
    mask = ramp.resize(size)
    return Image.composite(Image.new("RGB", size, end), Image.new("RGB", size, start), mask)


def _box(rng: random.Random, width: int, height: int) -> tuple[int, int, int, int]:
    w = rng.randint(width // 8, width // 2)
    h = rng.randint(height // 8, height // 2)
    x = rng.randint(0, width - w)
    y = rng.randint(0, height - h)
    return (x, y, x + w, y + h)


def _caption(draw: object, prompt: str, size: tuple[int, int]) -> None:
    """The prompt's start along the bottom, so a person sees which prompt made the picture."""
    from PIL import ImageDraw, ImageFont

    assert isinstance(draw, ImageDraw.ImageDraw)
    text = " ".join(prompt.split())
    if not text:
        return
    width, height = size
    points = max(height // 24, 10)
    font = ImageFont.load_default(points)
    limit = max(width // max(points // 2, 1) - 2, 8)
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    band = points * 2
    draw.rectangle((0, height - band, width, height), fill=(0, 0, 0, 150))
    draw.text((points // 2, height - band + points // 2), text, fill=(255, 255, 255), font=font)


def _pattern(media: Media, size: tuple[int, int], rng: random.Random) -> PILImage.Image:
    from PIL import Image, ImageColor, ImageDraw

    colours: list[tuple[int, ...]] = [ImageColor.getrgb(c) for c in media.colors]
    if media.color is not None:
        colours.insert(0, ImageColor.getrgb(media.color))
    while len(colours) < 2:
        colours.append(_colour(rng))
    first, second = _rgb(colours[0]), _rgb(colours[1])
    given = len(media.colors) + (media.color is not None)
    pattern = media.pattern or ("solid" if given == 1 else "stripes")
    width, height = size
    if pattern == "solid":
        return Image.new("RGBA", size, first)
    if pattern == "gradient":
        return _gradient(size, first, second, across=True).convert("RGBA")
    if pattern == "shapes":
        return _generated(size, "", rng)
    image = Image.new("RGBA", size, first)
    draw = ImageDraw.Draw(image)
    cell = max(min(width, height) // 8, 1)
    stripes = [_rgb(c) for c in colours]
    if pattern == "stripes":
        for number, x in enumerate(range(0, width, cell)):
            draw.rectangle((x, 0, x + cell - 1, height), fill=stripes[number % len(stripes)])
        return image
    for row, y in enumerate(range(0, height, cell)):  # checkerboard
        for column, x in enumerate(range(0, width, cell)):
            if (row + column) % 2:
                draw.rectangle((x, y, x + cell - 1, y + cell - 1), fill=second)
    return image


def _rgb(colour: tuple[int, ...]) -> tuple[int, int, int]:
    return (colour[0], colour[1], colour[2])


def _repaint(
    image: PILImage.Image, mask: bytes | None, prompt: str, rng: random.Random
) -> PILImage.Image:
    """An edit: new shapes and the prompt painted over the picture where the mask is
    transparent (its alpha 0), the rest kept as uploaded."""
    from PIL import Image

    painted = _generated(image.size, prompt, rng)
    blended = Image.blend(image, painted, 0.6)
    if mask is None:
        return blended
    alpha = _fit(_open(mask, "mask"), image.size).getchannel("A")
    # Transparent in the mask = to be edited: take the painted picture there.
    keep = alpha.point(lambda value: 255 if value else 0)
    return Image.composite(image, blended, keep)


def _vary(image: PILImage.Image, rng: random.Random) -> PILImage.Image:
    """A variation: the same picture with its colours turned and a little brightness change."""
    from PIL import Image, ImageEnhance

    red, green, blue, alpha = image.split()
    channels = [red, green, blue]
    rng.shuffle(channels)
    turned = Image.merge("RGBA", (*channels, alpha))
    return ImageEnhance.Brightness(turned).enhance(rng.uniform(0.85, 1.15))


def source_pixels(sources: Sequence[bytes]) -> int:
    """How many pixels the uploaded pictures hold (image input tokens follow it)."""
    total = 0
    for data in sources:
        try:
            width, height = check_source(data, "image")
        except ApiError:
            continue
        total += width * height
    return total
