"""The photo pipeline on realistic "photos" rebuilt from real Fashion-MNIST test images.

Each photo is a dataset image turned back into what Zalando started from: a dark garment on
a white background, upscaled and placed off-centre on a larger canvas.  The "dataset"
pipeline must recover something very close to the original 28x28 image.
"""

from __future__ import annotations

import io
import os
import struct
import tracemalloc
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from fmnist_edge.edge import photo
from fmnist_edge.edge.dataset import load_split
from fmnist_edge.edge.errors import UserError

#: The method whose output on these product-style photos is the original dataset image:
#: tests of decoding (orientation, alpha, modes, frames) compare through it.  The default
#: "segment" method is tested on the same photos in tests/test_segment.py.
EXACT = "dataset"

#: Two images of every class, spread over the test set.
SAMPLE = [0, 1, 2, 3, 4, 8, 11, 19, 21, 23, 29, 34, 41, 46, 55, 61, 67, 72, 88, 97]


@pytest.fixture(scope="module")
def images(data_dir: Path) -> np.ndarray:
    """The real test images (10000, 28, 28) uint8, light on dark."""
    return load_split("test").images


def make_photo(orig: np.ndarray, scale: int = 10, canvas: tuple[int, int] = (900, 700),
               at: tuple[int, int] = (60, 250), background: int = 255) -> Image.Image:
    """A dataset image as a product photo: dark garment, light background, off-centre."""
    garment = Image.fromarray(255 - orig).resize((28 * scale, 28 * scale),
                                                  Image.Resampling.BICUBIC)
    page = Image.new("L", canvas, 255)
    page.paste(garment, at)
    arr = np.asarray(page).astype(np.float32)
    # Put the page on a ``background`` grey while keeping the garment's own darkness.
    arr = arr * (background / 255.0)
    return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8)).convert("RGB")


def corr(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two images."""
    return float(np.corrcoef(a.astype(np.float64).ravel(), b.astype(np.float64).ravel())[0, 1])


def mad(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference, in grey levels."""
    return float(np.abs(a.astype(np.int32) - b.astype(np.int32)).mean())


def save(img: Image.Image, path: Path, **kwargs: Any) -> Path:
    img.save(path, **kwargs)
    return path


def assert_pixels(p: np.ndarray) -> None:
    assert p.shape == (28, 28)
    assert p.dtype == np.uint8


# ------------------------------------------------------------------------------------------
# The dataset pipeline


def test_dataset_pipeline_recovers_originals(images: np.ndarray, tmp_path: Path) -> None:
    cors, mads = [], []
    for i in SAMPLE:
        path = save(make_photo(images[i]), tmp_path / f"{i}.png")
        p = photo.to_pixels(photo.open_image(path, path.name), EXACT)
        assert_pixels(p)
        cors.append(corr(p, images[i]))
        mads.append(mad(p, images[i]))
    # Measured: mean correlation 0.918 (min 0.838, a thin sandal), mean |diff| 16 grey levels.
    assert min(cors) > 0.8, cors
    assert np.mean(cors) > 0.9, cors
    assert np.mean(mads) < 20, mads
    # Background stays black, as in the dataset.
    assert all(photo.to_pixels(make_photo(images[i]), EXACT)[0, 0] == 0 for i in SAMPLE[:5])


def test_simple_differs_from_dataset_and_is_the_naive_computation(images: np.ndarray) -> None:
    img = make_photo(images[0])
    simple = photo.to_pixels(img, "simple")
    naive = 255 - np.asarray(img.convert("L").resize((28, 28)), dtype=np.int32)
    assert_pixels(simple)
    np.testing.assert_array_equal(simple, naive.astype(np.uint8))
    dataset = photo.to_pixels(img, "dataset")
    assert mad(simple, dataset) > 10
    # On an off-centre photo the naive way loses the garment; the dataset way does not.
    assert corr(dataset, images[0]) > corr(simple, images[0]) + 0.3


def test_dataset_png_passes_through_byte_identical(images: np.ndarray, tmp_path: Path) -> None:
    for i in range(0, 10000, 200):
        path = save(Image.fromarray(images[i]), tmp_path / f"{i}.png")
        out = photo.to_pixels(photo.open_image(path, path.name))
        assert out.dtype == np.uint8
        assert out.tobytes() == images[i].tobytes(), i
    # The same from bytes, and from an RGB copy of a grey image.
    data = io.BytesIO()
    Image.fromarray(images[7]).convert("RGB").save(data, format="PNG")
    out = photo.to_pixels(photo.open_image(data.getvalue(), "upload.png"))
    assert out.tobytes() == images[7].tobytes()


def test_negated_dataset_image_round_trips(images: np.ndarray) -> None:
    out = photo.to_pixels(Image.fromarray(255 - images[3]))
    np.testing.assert_array_equal(out, images[3])


def test_upscaled_dataset_images_are_never_lost(images: np.ndarray) -> None:
    """A dataset image on a screen or in a video: a shirt's sleeves or trousers touch two
    edges of the square, so segmentation, learning the background from the border, can find
    nothing; the pipeline then trims it as a dataset image (segment-3 alone lost 15 of these
    100)."""
    lost, close = [], 0
    for i in range(100):
        big = Image.fromarray(images[i]).resize((224, 224), Image.Resampling.NEAREST)
        jpeg = io.BytesIO()
        big.convert("RGB").save(jpeg, format="JPEG", quality=75)
        p = photo.to_pixels(Image.open(io.BytesIO(jpeg.getvalue())))
        if photo.is_blank(p):
            lost.append(i)
        close += corr(p, images[i]) > 0.8
    assert len(lost) <= 2, f"no garment found in upscaled test images {lost}"
    assert close >= 75  # the rest are segmented, toned as photos are: still the garment


def test_light_on_dark_photo_is_not_negated(images: np.ndarray) -> None:
    orig = images[SAMPLE[3]]
    big = Image.fromarray(orig).resize((280, 280), Image.Resampling.BICUBIC)
    page = Image.new("L", (800, 600), 0)
    page.paste(big, (400, 40))
    p = photo.to_pixels(page.convert("RGB"), EXACT)
    assert corr(p, orig) > 0.9
    assert p[0, 0] == 0
    # Same garment, same place, dark on white: the pipeline must land on the same pixels.
    negated = photo.to_pixels(Image.fromarray(255 - np.asarray(page)).convert("RGB"), EXACT)
    assert corr(p, negated) > 0.99


def test_grey_paper_background_is_levelled_to_black(images: np.ndarray) -> None:
    orig = images[SAMPLE[2]]
    p = photo.to_pixels(make_photo(orig, background=200), EXACT)
    ring = np.concatenate([p[0], p[-1], p[:, 0], p[:, -1]])
    assert np.median(ring) == 0                               # not the grey 255 - 200 = 55
    assert corr(p, orig) > 0.9


def test_blank_picture_gives_empty_pixels() -> None:
    p = photo.to_pixels(Image.new("RGB", (300, 200), (250, 250, 250)))
    assert_pixels(p)
    assert p.max() == 0


def test_unknown_method_is_a_user_error(images: np.ndarray) -> None:
    with pytest.raises(UserError, match="unknown preprocessing method 'fancy'"):
        photo.to_pixels(Image.fromarray(images[0]), "fancy")


# ------------------------------------------------------------------------------------------
# Decoding: orientation, alpha, modes, frames


def test_exif_orientation_is_applied(images: np.ndarray, tmp_path: Path) -> None:
    orig = images[SAMPLE[1]]                      # a trouser: tall, so rotation matters
    upright = make_photo(orig)
    stored = upright.transpose(Image.Transpose.ROTATE_90)   # as a sideways-held phone stores it
    exif = Image.Exif()
    exif[0x0112] = 6                                         # "rotate 90° clockwise to view"
    path = save(stored, tmp_path / "phone.jpg", exif=exif, quality=95)
    opened = photo.open_image(path, "phone.jpg")
    assert opened.size == upright.size
    p = photo.to_pixels(opened, EXACT)
    reference = photo.to_pixels(upright, EXACT)
    assert corr(p, reference) > 0.95
    assert corr(p, orig) > 0.9
    sideways = photo.to_pixels(stored, EXACT)
    assert corr(sideways, orig) < 0.5                        # so the check above means something


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_transparent_background_is_composited_on_white(images: np.ndarray, tmp_path: Path,
                                                       mode: str) -> None:
    orig = images[SAMPLE[6]]
    grey = np.asarray(make_photo(orig).convert("L"))
    alpha = np.where(grey < 250, 255, 0).astype(np.uint8)     # background fully transparent
    colour = np.where(alpha > 0, grey, 0).astype(np.uint8)    # ... and black underneath
    layers = [colour] * (3 if mode == "RGBA" else 1) + [alpha]
    img = Image.fromarray(np.dstack(layers), mode=mode)
    path = save(img, tmp_path / "cutout.png")
    opened = photo.open_image(path, "cutout.png")
    assert opened.mode in ("RGB", "L")
    assert opened.getpixel((0, 0)) in (255, (255, 255, 255))
    assert corr(photo.to_pixels(opened, EXACT), orig) > 0.9


def test_sixteen_bit_png_matches_eight_bit(images: np.ndarray, tmp_path: Path) -> None:
    grey = np.asarray(make_photo(images[SAMPLE[4]]).convert("L"))
    deep = Image.fromarray(grey.astype(np.uint16) * 257)
    assert deep.mode.startswith("I;16")
    path = save(deep, tmp_path / "deep.png")
    opened = photo.open_image(path, "deep.png")
    assert opened.mode == "L"
    np.testing.assert_array_equal(np.asarray(opened), grey)
    np.testing.assert_array_equal(photo.to_pixels(opened), photo.to_pixels(Image.fromarray(grey)))


def test_thirty_two_bit_integer_image(images: np.ndarray) -> None:
    grey = np.asarray(make_photo(images[SAMPLE[4]]).convert("L"))
    wide = Image.fromarray(grey.astype(np.int32) * 257)
    assert wide.mode == "I"
    out = photo.to_pixels(wide)
    np.testing.assert_array_equal(out, photo.to_pixels(Image.fromarray(grey)))


def test_palette_images(images: np.ndarray, tmp_path: Path) -> None:
    orig = images[SAMPLE[8]]
    pal = make_photo(orig).convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    path = save(pal, tmp_path / "pal.png")
    assert Image.open(path).mode == "P"
    assert corr(photo.to_pixels(photo.open_image(path, "pal.png"), EXACT), orig) > 0.9
    # Palette with a transparent (black) background index: composited onto white.
    grey = np.asarray(make_photo(orig).convert("L")).copy()
    grey[grey >= 250] = 0
    trans = Image.fromarray(grey).convert("P")
    path = save(trans, tmp_path / "trans.png", transparency=0)
    opened = photo.open_image(path, "trans.png")
    assert opened.getpixel((0, 0)) in (255, (255, 255, 255))
    assert corr(photo.to_pixels(opened, EXACT), orig) > 0.9


def test_cmyk_jpeg(images: np.ndarray, tmp_path: Path) -> None:
    orig = images[SAMPLE[10]]
    path = save(make_photo(orig).convert("CMYK"), tmp_path / "print.jpg", quality=95)
    assert Image.open(path).mode == "CMYK"
    opened = photo.open_image(path, "print.jpg")
    assert opened.mode == "RGB"
    assert corr(photo.to_pixels(opened, EXACT), orig) > 0.9


def test_bilevel_image(images: np.ndarray, tmp_path: Path) -> None:
    orig = images[SAMPLE[12]]
    bw = make_photo(orig).convert("L").point(lambda v: 255 if v > 160 else 0).convert("1")
    path = save(bw, tmp_path / "bw.png")
    assert Image.open(path).mode == "1"
    p = photo.to_pixels(photo.open_image(path, "bw.png"), EXACT)
    assert_pixels(p)
    assert corr(p, orig) > 0.75


def test_animated_gif_uses_first_frame(images: np.ndarray, tmp_path: Path) -> None:
    first, second = images[SAMPLE[0]], images[SAMPLE[2]]      # an ankle boot, then a shirt
    frames = [make_photo(first).convert("L"), make_photo(second, at=(400, 20)).convert("L")]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    with Image.open(path) as gif:
        assert getattr(gif, "n_frames", 1) == 2
    p = photo.to_pixels(photo.open_image(path, "anim.gif"), EXACT)
    assert corr(p, first) > 0.85
    assert corr(p, first) > corr(p, second) + 0.2


def test_large_jpeg_is_decoded_at_reduced_scale(images: np.ndarray, tmp_path: Path) -> None:
    orig = images[SAMPLE[0]]
    full = make_photo(orig, scale=80, canvas=(4000, 3000), at=(500, 400))
    path = save(full, tmp_path / "big.jpg", quality=90)
    opened = photo.open_image(path, "big.jpg")
    assert max(opened.size) <= 2000                           # draft mode: 1/2 scale or less
    p = photo.to_pixels(opened, EXACT)
    assert corr(p, orig) > 0.9
    assert corr(p, photo.to_pixels(full, EXACT)) > 0.98


def test_frame_to_pixels_matches_to_pixels_for_rgb_frames(images: np.ndarray) -> None:
    grey = np.asarray(make_photo(images[SAMPLE[16]]).convert("L"))
    rgb = np.dstack([grey, np.full_like(grey, 255), np.full_like(grey, 255)])  # a red-ish garment
    expected = photo.to_pixels(Image.fromarray(rgb))
    np.testing.assert_array_equal(photo.frame_to_pixels(rgb), expected)
    assert not np.array_equal(photo.frame_to_pixels(rgb[..., ::-1]), expected)  # order matters
    assert expected.shape == photo.SHAPE
    with pytest.raises(UserError, match="camera frame must be"):
        photo.frame_to_pixels(rgb.astype(np.float32))


# ------------------------------------------------------------------------------------------
# Bad input: one line naming the file, never a traceback


def png_header(width: int, height: int) -> bytes:
    """A PNG that claims ``width`` x ``height`` (valid IHDR CRC) with no real pixel data."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I",
                                                                         zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def refused(source: Path | bytes, name: str) -> str:
    with pytest.raises(UserError) as info:
        photo.open_image(source, name)
    message = str(info.value)
    assert message.startswith(f"{name}: ")
    assert "\n" not in message
    return message


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    assert "empty" in refused(path, "empty.png")
    assert "empty" in refused(b"", "upload.png")


def test_truncated_png(images: np.ndarray, tmp_path: Path) -> None:
    data = io.BytesIO()
    make_photo(images[0]).save(data, format="PNG")
    path = tmp_path / "cut.png"
    path.write_bytes(data.getvalue()[: len(data.getvalue()) // 2])
    assert "truncated" in refused(path, "cut.png")


def test_text_file_named_png(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("this is not a picture\n")
    assert "not an image" in refused(path, "notes.png")


@pytest.mark.parametrize("side", [100_000, 10_000, 8_500])
def test_decompression_bomb_refused_from_header(tmp_path: Path, side: int) -> None:
    """100000² is pillow's own error, 10000² its warning, 8500² (72 MP) our 64 MP limit."""
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header(side, side))
    tracemalloc.start()
    try:
        message = refused(path, "bomb.png")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "too large" in message
    assert peak < 5_000_000  # refused from the header: nothing was decoded


def test_missing_file_and_folder(tmp_path: Path) -> None:
    assert "no such file" in refused(tmp_path / "nope.png", "nope.png")
    assert "folder" in refused(tmp_path, "photos")


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="running as root: chmod 000 does not stop root from reading")
def test_unreadable_file(images: np.ndarray, tmp_path: Path) -> None:
    path = save(Image.fromarray(images[0]), tmp_path / "secret.png")
    path.chmod(0)
    try:
        assert "cannot read" in refused(path, "secret.png")
    finally:
        path.chmod(0o644)


def test_permission_error_is_reported(images: np.ndarray, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The same path as chmod 000, reachable even as root: open() refusing the file."""
    path = save(Image.fromarray(images[0]), tmp_path / "secret.png")

    def deny(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(photo, "open", deny, raising=False)
    assert "cannot read (Permission denied)" in refused(path, "secret.png")


@pytest.mark.parametrize("fmt", ["WEBP", "TIFF", "PNG"])
def test_image_through_a_named_pipe(images: np.ndarray, tmp_path: Path, fmt: str) -> None:
    """A pipe cannot seek back: in a fresh process (pillow's later plugins not yet loaded)
    a format pillow finds only on its second try must still decode from a named pipe."""
    import subprocess
    import sys
    import threading

    buf = io.BytesIO()
    Image.fromarray(images[0]).save(buf, format=fmt, **({"lossless": True} if fmt == "WEBP"
                                                        else {}))
    fifo = tmp_path / "shot.img"
    os.mkfifo(fifo)

    def feed() -> None:
        with open(fifo, "wb") as fh:
            fh.write(buf.getvalue())

    writer = threading.Thread(target=feed)
    writer.start()
    code = ("import sys; import numpy as np; from fmnist_edge.edge import photo; "
            "img = photo.open_image(sys.argv[1], 'shot.img'); "
            "sys.stdout.buffer.write(photo.to_pixels(img, 'dataset').tobytes())")
    try:
        run = subprocess.run([sys.executable, "-c", code, str(fifo)], capture_output=True,
                             timeout=120)
    finally:
        writer.join(timeout=10)
    assert run.returncode == 0, run.stderr.decode()
    assert run.stdout == images[0].tobytes()
