"""Train the learned garment segmenter (:mod:`fmnist_edge.edge.segnet`) on rendered photos.

Pipeline segment-3 learns the background from the frame's border ring; a garment that fills
the frame, touches the border or looks like its background defeats it.  This trains a tiny
U-Net (about 44,000 parameters) on ``(picture, mask)`` pairs instead:

- **pairs**: renders of training-split images (:func:`fmnist_edge.train.render.scene`, seeded
  per (seed, split, index)), JPEG-encoded with render's own quality draw, decoded and shrunk
  exactly as the device does (:func:`device_copy`), with the garment's alpha *as the camera
  saw it* (moved by the same perspective tilt) box-resized to that copy.  A few scenes hold
  no garment (an all-black image renders background only) so "nothing here" is learned too;
- **augmentation** per epoch: flips, a zoom that pushes the garment over the border, colour
  jitter and channel swaps, and a sharpened, textured garment: renders upscale a 28-px
  garment, so it is smoother than the background, a cue real photos do not have;
- **loss**: binary cross-entropy plus half a soft Dice (thin garments count as much as big
  ones); Adam with a cosine-decayed rate; TensorFlow on one thread, deterministic kernels;
- **export** to float32 ``.tflite`` (LiteRT, tflite-runtime) and ``.onnx`` (onnxruntime),
  each checked against Keras on renders of validation images; written into one folder
  with ``segnet.json`` (sizes, hashes, validation IoU of the net and of segment-3).

Chosen on validation renders only (the 70/30 split, seed 777): see ``segnet.json`` and the
module :mod:`fmnist_edge.edge.segnet`.

    python -m fmnist_edge.train.segnet -o artifacts/segmenter     # or: make segmenter
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import click
import numpy as np
from PIL import Image

from fmnist_edge.edge import atomic, cli_util, dataset, photo, segment, segnet
from fmnist_edge.edge.hashing import sha256_of
from fmnist_edge.train import render, rendered

#: (height, width) of the net's input and output, the device's own constant.
H, W = segnet.INPUT_SHAPE


@dataclass(frozen=True)
class SegnetConfig:
    """The segmenter's data, size and training; the defaults made the shipped model."""

    seed: int = dataset.SEED
    renders: int = 28_000  # training pairs (renders of training-split images)
    empty_share: float = 0.04  # of them, scenes with no garment
    val_renders: int = 500  # renders of validation-split images, for the figures
    width: int = 12  # channels of the first encoder stage
    epochs: int = 4
    batch_size: int = 32
    learning_rate: float = 3e-3
    dice_weight: float = 0.5


# --------------------------------------------------------------------------------------------
# Pairs


def device_copy(jpeg: bytes) -> Image.Image:
    """The segmentation copy the device makes of this file (photo's own steps)."""
    img = photo.open_image(jpeg, "render")
    work = photo.shrink(img, photo.RENDER_SIDE).convert("RGB")
    return segment.segment_copy(work)


def to_portrait(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A float mask at picture size → (H, W) as :func:`segnet.portrait` turns the copy:
    box-resized to the copy's ``size`` (w, h), transposed when landscape, resized to fit."""
    img = Image.fromarray(mask.astype(np.float32), mode="F").resize(size, Image.Resampling.BOX)
    if size[0] > size[1]:
        img = img.transpose(Image.Transpose.TRANSPOSE)
    if img.size != (W, H):
        img = img.resize((W, H), Image.Resampling.BILINEAR)
    return np.asarray(img, np.float32)


def pair(image: np.ndarray, label: int, rng: np.random.Generator
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One render → the net's input pixels (H, W, 3) uint8, the mask as the camera saw it and
    the pre-tilt alpha (how tests/test_segment.py scores segment-3), both (H, W) float32."""
    picture, alpha, seen = render.scene(image, label, rng)
    small = device_copy(render.encode(picture, rng))
    pixels, _ = segnet.portrait(small)
    return pixels, to_portrait(seen, small.size), to_portrait(alpha, small.size)


def _pair_chunk(args: tuple[np.ndarray, np.ndarray, np.ndarray, int, str]
                ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    images, labels, indices, seed, split = args
    return [pair(img, int(lab), render.rng_for(seed, split, int(i)))
            for img, lab, i in zip(images, labels, indices, strict=True)]


def pairs(images: np.ndarray, labels: np.ndarray, indices: np.ndarray, seed: int
          ) -> dict[str, np.ndarray]:
    """``x`` (N, H, W, 3) uint8, ``seen`` and ``alpha`` (N, H, W) float32 for renders of
    training-split ``images[indices]``; cached beside the photo recipe's renders, keyed by
    the images too (:func:`training_pairs` blanks some of them)."""
    digest = hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest()[:12]
    kind = f"segnet-pairs-{digest}"
    path = rendered.cache_dir() / f"{rendered.key(kind, 'train', seed, indices)}.npz"
    if path.is_file():
        with np.load(path) as z:
            return {k: np.asarray(z[k]) for k in ("x", "seen", "alpha")}
    step = 500
    jobs = [(images[s:s + step], labels[s:s + step], indices[s:s + step], seed, "train")
            for s in range(0, len(indices), step)]
    rows = [r for chunk in rendered.pool_map(_pair_chunk, jobs, rendered.MAX_WORKERS)
            for r in chunk]
    out = {"x": np.stack([r[0] for r in rows]), "seen": np.stack([r[1] for r in rows]),
           "alpha": np.stack([r[2] for r in rows])}
    rendered.save(path, **out)
    return out


def training_pairs(cfg: SegnetConfig) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Pairs from the training side of the 70/30 split, and from its validation side."""
    train = dataset.load_split("train")
    tr, va = dataset.validation_split(len(train.labels), seed=cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    tr_idx = np.sort(rng.choice(tr, min(cfg.renders, len(tr)), replace=False))
    va_idx = np.sort(rng.choice(va, min(cfg.val_renders, len(va)), replace=False))
    images = train.images[tr_idx].copy()
    images[rng.random(len(tr_idx)) < cfg.empty_share] = 0  # background only
    return (pairs(images, train.labels[tr_idx], tr_idx, cfg.seed),
            pairs(train.images[va_idx], train.labels[va_idx], va_idx, cfg.seed))


# --------------------------------------------------------------------------------------------
# Augmentation


def _box3(x: np.ndarray) -> np.ndarray:
    """3x3 mean of an (H, W, C) array, edges replicated."""
    p = np.pad(x, ((1, 1), (1, 1), (0, 0)), mode="edge")
    return np.mean([p[dy:dy + x.shape[0], dx:dx + x.shape[1]]
                    for dy in range(3) for dx in range(3)], axis=0)


def _zoom(f: np.ndarray, m: np.ndarray, rng: np.random.Generator
          ) -> tuple[np.ndarray, np.ndarray]:
    """A random 70-95 % crop resized back: the garment fills the frame, touches the border."""
    s = rng.uniform(0.7, 0.95)
    ch, cw = round(H * s), round(W * s)
    y0, x0 = int(rng.integers(0, H - ch + 1)), int(rng.integers(0, W - cw + 1))

    def resize(a: np.ndarray) -> np.ndarray:
        img = Image.fromarray(np.ascontiguousarray(a[y0:y0 + ch, x0:x0 + cw]), mode="F")
        return np.asarray(img.resize((W, H), Image.Resampling.BILINEAR), np.float32)

    return np.stack([resize(f[..., k]) for k in range(3)], -1), resize(m)


def augment(x: np.ndarray, m: np.ndarray, rng: np.random.Generator
            ) -> tuple[np.ndarray, np.ndarray]:
    """One picture (H, W, 3) uint8 and its mask (H, W): a new view of the same scene."""
    f = x.astype(np.float32)
    if rng.random() < 0.5:
        f, m = f[:, ::-1], m[:, ::-1]
    if rng.random() < 0.3:  # garments lie on floors any way up
        f, m = f[::-1], m[::-1]
    if rng.random() < 0.25:
        f, m = _zoom(f, np.ascontiguousarray(m, np.float32), rng)
    inside = m[..., None]
    if rng.random() < 0.5:  # a crisp garment: unsharp-masked where the mask is
        f = f + inside * np.float32(rng.uniform(0.5, 2.0)) * (f - _box3(f))
    if rng.random() < 0.4:  # fabric texture on the garment only
        noise = rng.standard_normal((H, W, 1)).astype(np.float32)
        f = f + inside * noise * np.float32(rng.uniform(3, 14))
    if rng.random() < 0.5:
        f = f[..., rng.permutation(3)]
    if rng.random() < 0.1:
        f = np.repeat(f.mean(axis=2, keepdims=True), 3, axis=2)
    f = f * rng.uniform(0.8, 1.2, 3).astype(np.float32) * rng.uniform(0.7, 1.3)
    mean = f.mean()
    f = mean + (f - mean) * rng.uniform(0.7, 1.3)
    return np.clip(f, 0, 255).astype(np.uint8), np.ascontiguousarray(m, np.float32)


def batches(x: np.ndarray, y: np.ndarray, batch: int, epoch: int, seed: int
            ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Shuffled, augmented batches of one epoch (seeded by (seed, epoch))."""
    rng = np.random.default_rng([seed, 3_000_000 + epoch])
    order = rng.permutation(len(x))
    for s in range(0, len(order) - batch + 1, batch):
        xb, yb = zip(*(augment(x[i], y[i], rng) for i in order[s:s + batch]), strict=True)
        yield segnet.net_input(np.stack(xb)), np.stack(yb)[..., None]


# --------------------------------------------------------------------------------------------
# The net


def build(width: int) -> Any:
    """A small U-Net: three stride-2 stages (width x 1, 1.5, 2.5 channels), dilated
    convolutions and the picture's global average at 1/8 scale (where the background is),
    bilinear upsampling with skips back to full resolution, one sigmoid channel."""
    import keras
    from keras import layers

    def conv(x: Any, ch: int, stride: int = 1, dil: int = 1, k: int = 3) -> Any:
        x = layers.Conv2D(ch, k, strides=stride, padding="same", dilation_rate=dil,
                          use_bias=False)(x)
        return layers.ReLU()(layers.BatchNormalization()(x))

    c = [width * 3 // 4, width, width * 3 // 2, width * 5 // 2]
    inp = keras.Input((H, W, 3), name="picture")
    e0 = conv(inp, c[0])
    e1 = conv(conv(e0, c[1], 2), c[1])
    e2 = conv(conv(e1, c[2], 2), c[2])
    b = conv(conv(conv(e2, c[3], 2), c[3], dil=2), c[3], dil=4)
    g = layers.UpSampling2D((H // 8, W // 8))(layers.GlobalAveragePooling2D(keepdims=True)(b))
    u = conv(layers.Concatenate()([b, g]), c[3], k=1)
    for skip, ch in ((e2, c[2]), (e1, c[1]), (e0, c[0])):
        u = layers.UpSampling2D(2, interpolation="bilinear")(u)
        u = conv(layers.Concatenate()([u, skip]), ch)
    out = layers.Conv2D(1, 1, activation="sigmoid", name="garment")(u)
    return keras.Model(inp, out, name="segnet")


def fit(cfg: SegnetConfig, train: dict[str, np.ndarray], val: dict[str, np.ndarray],
        log: Any = print) -> tuple[Any, list[dict[str, float]]]:
    """Train on ``train`` (mask as seen), report validation IoU after each epoch."""
    import keras
    import tensorflow as tf

    from fmnist_edge.train import fit as tutorial_fit

    tutorial_fit.make_deterministic(cfg.seed)
    model = build(cfg.width)
    steps = cfg.epochs * (len(train["x"]) // cfg.batch_size)
    opt = keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(cfg.learning_rate, steps))
    bce = keras.losses.BinaryCrossentropy()

    @tf.function
    def step(xb: Any, yb: Any) -> Any:
        with tf.GradientTape() as tape:
            p = model(xb, training=True)
            inter = tf.reduce_sum(p * yb, axis=[1, 2, 3])
            dice = 1 - (2 * inter + 1) / (tf.reduce_sum(p + yb, axis=[1, 2, 3]) + 1)
            loss = bce(yb, p) + cfg.dice_weight * tf.reduce_mean(dice)
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    history = []
    for epoch in range(cfg.epochs):
        start, losses = time.perf_counter(), []
        for xb, yb in batches(train["x"], train["seen"], cfg.batch_size, epoch, cfg.seed):
            losses.append(float(step(tf.constant(xb), tf.constant(yb))))
        prob = predict(model, val["x"])
        row = {"epoch": epoch + 1, "loss": round(float(np.mean(losses)), 4),
               "val_iou": round(iou(prob >= segnet.THRESHOLD, val["seen"])[0], 4),
               "seconds": round(time.perf_counter() - start, 1)}
        history.append(row)
        log(f"segmenter epoch {row['epoch']}/{cfg.epochs}: loss {row['loss']}, "
            f"validation IoU {row['val_iou']} ({row['seconds']} s)")
    return model, history


def predict(model: Any, x: np.ndarray) -> np.ndarray:
    """Keras probabilities (N, H, W) for uint8 pictures."""
    return np.asarray(model.predict(segnet.net_input(x), batch_size=64, verbose=0))[..., 0]


def iou(found: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Mean IoU over pictures, and the share below 0.5 (an empty pair counts as 1)."""
    f, t = found > 0.5, truth > 0.5
    union = (f | t).sum(axis=(1, 2))
    per = np.where(union > 0, (f & t).sum(axis=(1, 2)) / np.maximum(union, 1), 1.0)
    return float(per.mean()), float((per < 0.5).mean())


# --------------------------------------------------------------------------------------------
# Export and figures


def export(model: Any, folder: Path) -> dict[str, Path]:
    """Float32 ``.tflite`` and ``.onnx`` files in ``folder`` (batch dimension dynamic)."""
    import onnx
    import tensorflow as tf
    import tf2onnx

    from fmnist_edge.export.base import silenced_stdout

    folder.mkdir(parents=True, exist_ok=True)
    paths = {fmt: folder / name for fmt, name in segnet.FILES.items()}
    with silenced_stdout():
        flat = tf.lite.TFLiteConverter.from_keras_model(model).convert()
        signature = [tf.TensorSpec([None, H, W, 3], tf.float32, name="picture")]
        function = tf.function(lambda x: model(x, training=False), input_signature=signature)
        proto, _ = tf2onnx.convert.from_function(function, input_signature=signature,
                                                 opset=17)
    onnx.checker.check_model(proto)
    atomic.write_bytes(paths["tflite"], flat)
    atomic.write_bytes(paths["onnx"], proto.SerializeToString())
    return paths


def verify(model: Any, paths: dict[str, Path], x: np.ndarray) -> dict[str, float]:
    """Largest probability difference between each exported file and Keras."""
    from fmnist_edge.edge import runtimes

    keras_prob = predict(model, x)
    out = {}
    for fmt, path in paths.items():
        session = runtimes.open_session(path, None, threads=1)  # the best one installed
        prob = np.concatenate([session.run(segnet.net_input(x[s:s + 1]))
                               for s in range(len(x))])[..., 0]
        out[fmt] = float(np.abs(prob - keras_prob).max())
    return out


def figures(model: Any, val: dict[str, np.ndarray]) -> dict[str, Any]:
    """Validation IoU of the net (clean-up included) and of segment-3 on the same copies
    (turned to portrait, as the net sees them), against both truths."""
    prob = predict(model, val["x"])
    found = {"segnet": np.stack([segnet.garment(p).mask for p in prob]),
             "segment-3": np.stack([segment.find_garment(Image.fromarray(x)).mask
                                    for x in val["x"]])}
    out: dict[str, Any] = {"renders": len(prob)}
    for name, masks in found.items():
        for truth in ("seen", "alpha"):
            mean, low = iou(masks, val[truth])
            out[f"{name}_iou_{truth}"] = {"mean": round(mean, 4), "below_0.5": round(low, 4)}
    return out


def train_and_export(cfg: SegnetConfig, output: Path, log: Any = print) -> dict[str, Any]:
    """The whole run: pairs, fit, export, verify; writes ``segnet.json`` beside the files."""
    start = time.perf_counter()
    train, val = training_pairs(cfg)
    log(f"segmenter: {len(train['x']):,} training pairs, {len(val['x']):,} validation pairs")
    model, history = fit(cfg, train, val, log)
    paths = export(model, output)
    record = {"config": asdict(cfg), "params": int(model.count_params()),
              "input_shape": [H, W, 3], "history": history,
              "validation": figures(model, val),
              "export_max_abs_diff": verify(model, paths, val["x"][:64]),
              "files": {p.name: {"bytes": p.stat().st_size, "sha256": sha256_of(p)}
                        for p in paths.values()},
              "seconds": round(time.perf_counter() - start, 1)}
    atomic.write_json(output / segnet.RECORD, record)
    return record


@click.command(name="fmnist-segmenter", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
              help="Folder for segnet-float32.tflite/.onnx and segnet.json.")
@click.option("--renders", type=click.IntRange(min=100), default=SegnetConfig.renders,
              show_default=True, help="Training pairs (renders of training-split images).")
@click.option("--epochs", type=click.IntRange(min=1), default=SegnetConfig.epochs,
              show_default=True)
@click.option("--seed", type=int, default=SegnetConfig.seed, show_default=True)
def cli(output: Path, renders: int, epochs: int, seed: int) -> None:
    """Train the learned garment segmenter and export it for the device."""
    cli_util.check_writable(output)
    cfg = SegnetConfig(seed=seed, renders=renders, epochs=epochs)
    record = train_and_export(cfg, output, lambda s: click.echo(s, err=True))
    click.echo(f"validation IoU {record['validation']['segnet_iou_seen']}; wrote {output}/",
               err=True)


def main() -> None:
    """Console-script entry point."""
    sys.exit(cli_util.run(cli))


if __name__ == "__main__":  # pragma: no cover
    main()
