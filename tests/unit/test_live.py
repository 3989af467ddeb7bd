"""The live pipeline core: sources, detection on a real face, tracking, smoothing, records."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from fer_tui.backends import load_model, pick_backend
from fer_tui.data.index import CLASSES
from fer_tui.errors import ConfigError, LiveError
from fer_tui.live import capture, display
from fer_tui.live.boxes import iou
from fer_tui.live.config import LiveConfig, load_live_config
from fer_tui.live.detection import YUNET, Detection, FaceDetector, YuNetDetector, make_detector
from fer_tui.live.pipeline import crop_faces, face_transform, realtime_prediction
from fer_tui.live.results import FrameResult, to_record
from fer_tui.live.tracking import FaceTracker, Track
from fer_tui.live.window import check_display, draw_overlay
from tests.helpers import make_face_video, make_tiny_checkpoint


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("live")
    return {
        "face": make_face_video(root / "face.avi", frames=24),
        "empty": make_face_video(root / "empty.avi", frames=12, face=False),
        "ckpt": make_tiny_checkpoint(root / "tiny.pt"),
    }


@pytest.fixture(scope="module")
def model(clips: dict[str, Path]):
    torch.set_num_threads(1)  # the CPU is shared; one thread keeps a run predictable
    return load_model(clips["ckpt"], device="cpu", channels_last=True)


def _run(model, source: str, **kw) -> list[FrameResult]:
    net, meta, device = model
    gen = realtime_prediction(
        net, face_transform(meta), 0.0, device, source, image_size=meta["image_size"], **kw
    )
    return list(gen)


def test_real_face_is_found_in_most_frames(clips, model) -> None:
    """Every frame of the astronaut video yields a result, >= 90% with the face, probs sum to 1."""
    results = _run(model, str(clips["face"]))
    assert [r.index for r in results] == list(range(24))
    with_face = [r for r in results if r.faces]
    assert len(with_face) >= 0.9 * len(results)
    for r in with_face:
        (face,) = r.faces
        assert face.probs.sum() == pytest.approx(1.0, abs=1e-5)
        assert face.probs_raw.sum() == pytest.approx(1.0, abs=1e-5)
        assert face.label in CLASSES
        x, y, w, h = face.box
        assert 40 < w < 250 and 0 <= x and x + w <= 640
    assert set(results[5].timings) == {"capture", "detect", "classify", "total"}


@pytest.mark.parametrize("slow_detector", [False, True])
def test_tracker_follows_the_moving_face(clips, model, monkeypatch, slow_detector) -> None:
    """The face keeps one track id while it slides right, and its box moves with it, even
    when background detections arrive many frames late."""
    if slow_detector:
        find = FaceDetector.find  # both detectors' way in

        def slow(self, *args, **kwargs):
            time.sleep(0.2)  # ~10 frames late: the face has moved ~40 px, over half its width
            return find(self, *args, **kwargs)

        monkeypatch.setattr(FaceDetector, "find", slow)
    cfg = LiveConfig(detect_every=2 if slow_detector else 8)
    results = _run(model, str(clips["face"]), config=cfg)
    tracked = [r.faces[0] for r in results if r.faces]
    assert {f.track_id for f in tracked} == {tracked[0].track_id}
    # the photo moves 4 px per frame: 23 frames -> ~92 px
    assert tracked[-1].box[0] - tracked[0].box[0] > 50


def _two_faces(second: bool = True) -> np.ndarray:
    """A 640x480 BGR frame with the astronaut on the left and, if `second`, again on the right."""
    from skimage.data import astronaut

    photo = cv2.resize(cv2.cvtColor(astronaut(), cv2.COLOR_RGB2BGR), (300, 300))
    img = np.full((480, 640, 3), 96, np.uint8)
    img[90:390, 10:310] = photo
    if second:
        img[90:390, 330:630] = photo
    return img


def test_detection_near_tracks_finds_the_same_face_only() -> None:
    """Between full scans the cascade looks only around tracked faces: it finds the tracked
    face where the full scan does, and not a face elsewhere."""
    det = FaceDetector(LiveConfig(detector="haar"))
    small = cv2.resize(cv2.cvtColor(_two_faces(), cv2.COLOR_BGR2GRAY), (320, 240))
    full = det.detect(small, 0.5)
    assert len(full) == 2
    left = min(full, key=lambda b: b[0])
    near = det.detect(small, 0.5, around=[left + np.float32([3, -2, 0, 0])])
    assert len(near) == 1 and iou(near[0], left) > 0.7


def test_a_face_that_arrives_later_is_found_by_the_next_full_scan(tmp_path: Path, model) -> None:
    """With faces tracked, a new face entering the view is picked up within one full-scan
    period (full_detect_every frames), and the first face keeps its track."""
    path = tmp_path / "arrive.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (640, 480))
    for i in range(30):
        writer.write(_two_faces(second=i >= 8))
    writer.release()
    cfg = LiveConfig(detect_every=2, full_detect_every=10, detect_async=False)
    counts = [len(r.faces) for r in _run(model, str(path), config=cfg)]
    assert counts[:8] == [1] * 8
    assert 2 in counts[8:21]
    assert counts[-1] == 2


def test_no_thread_outlives_the_loop(clips, model, monkeypatch) -> None:
    """When the stream ends, the capture and detector threads have finished, even with a
    detection still running, so nothing is left inside OpenCV when the process exits (which
    can abort it)."""
    import threading

    find = FaceDetector.find

    def slow(self, *args, **kwargs):
        time.sleep(0.3)  # the last frame goes by while this runs
        return find(self, *args, **kwargs)

    monkeypatch.setattr(FaceDetector, "find", slow)
    _run(model, str(clips["face"]), config=LiveConfig(detect_every=1), max_frames=12)
    alive = {t.name for t in threading.enumerate()}
    assert not alive & {"fer-detect", "fer-capture"}


def test_video_without_faces_gives_empty_records(clips, model) -> None:
    """A faceless video is not an error: every frame has a record with zero faces."""
    results = _run(model, str(clips["empty"]))
    assert len(results) == 12
    assert all(r.faces == [] for r in results)
    rec = to_record(results[0])
    assert rec["faces"] == [] and rec["frame"] == 0


def test_image_folder_source(tmp_path: Path, clips, model) -> None:
    """A folder of images is read in name order; unreadable files are skipped."""
    cap = cv2.VideoCapture(str(clips["face"]))
    for i in range(3):
        ok, img = cap.read()
        assert ok
        cv2.imwrite(str(tmp_path / f"f{i}.png"), img)
    cap.release()
    (tmp_path / "zz.jpg").write_bytes(b"not an image")
    results = _run(model, str(tmp_path))
    assert len(results) == 3
    assert all(r.faces for r in results)


def test_max_frames_and_preview(clips, model) -> None:
    """max_frames stops early; preview adds a w*h grey copy that fits the asked size."""
    results = _run(model, str(clips["face"]), max_frames=5, preview=(64, 36))
    assert len(results) == 5
    p = to_record(results[0])["preview"]
    assert (p["w"], p["h"]) == (48, 36)  # 4:3 frame inside 64x36
    assert len(base64.b64decode(p["data"])) == 48 * 36


def test_camera_that_does_not_exist(model) -> None:
    """Camera index 99 fails at once with a message naming the index."""
    with pytest.raises(LiveError, match="no camera at index 99"):
        _run(model, "99")


def test_unreadable_video(tmp_path: Path, model) -> None:
    """A file that is not a video gives a clear LiveError, not an OpenCV traceback."""
    bad = tmp_path / "clip.mp4"
    bad.write_bytes(b"\x00" * 1000)
    with pytest.raises(LiveError, match="clip.mp4"):
        _run(model, str(bad))
    with pytest.raises(LiveError, match="no such video"):
        _run(model, str(tmp_path / "missing.avi"))


def test_empty_folder(tmp_path: Path, model) -> None:
    """A folder without images names the problem."""
    with pytest.raises(LiveError, match="no images"):
        _run(model, str(tmp_path))


def test_tracks_keep_separate_histories() -> None:
    """Two faces keep their own ids and EMAs; a lost face is dropped after max_misses."""
    cfg = LiveConfig(max_misses=1, ema_alpha=0.5)
    tracker = FaceTracker(cfg, label_hold_seconds=0.0)
    small = np.zeros((240, 320), np.uint8)
    a, b = np.array([10, 10, 50, 50], np.float32), np.array([200, 20, 60, 60], np.float32)
    tracker.update(Detection(np.stack([a, b]), 0.0, small), small)
    ids = {t.track_id for t in tracker.tracks}
    assert len(ids) == 2
    # moved a little, listed in the other order
    tracker.update(Detection(np.stack([b + 3, a + 2]), 0.0, small), small)
    assert {t.track_id for t in tracker.tracks} == ids
    one, two = np.eye(7)[3], np.eye(7)[0]
    ta, tb = sorted(tracker.tracks, key=lambda t: t.box[0])
    tracker.smooth(ta, one, 0.0)
    tracker.smooth(tb, two, 0.0)
    tracker.smooth(ta, two, 0.1)
    assert ta.probs[3] == pytest.approx(0.5) and ta.probs[0] == pytest.approx(0.5)
    assert tb.probs[0] == pytest.approx(1.0)
    tracker.update(Detection(np.stack([b]), 0.0, small), small)
    tracker.update(Detection(np.stack([b]), 0.0, small), small)
    assert [t.track_id for t in tracker.tracks] == [tb.track_id]


def test_late_detection_is_matched_where_the_face_was() -> None:
    """A background detection of an older frame continues the track that has moved on since,
    and is shifted by that motion, instead of starting a second face."""
    tracker = FaceTracker(LiveConfig(), label_hold_seconds=0.0)
    small = np.zeros((240, 320), np.uint8)
    start = np.array([20, 50, 40, 40], np.float32)
    tracker.update(Detection(start[None], 0.0, small), small)
    since = tracker.snapshot()
    (track,) = tracker.tracks
    track.box[0] += 60  # the tracker followed the face 60 px right meanwhile
    tracker.update(Detection((start + [2, 0, 4, 4])[None], 0.0, small, since), small)
    (after,) = tracker.tracks
    assert after.track_id == track.track_id
    assert after.box.tolist() == [82.0, 50.0, 44.0, 44.0]


def test_label_hold_stops_flicker() -> None:
    """The shown label changes only once it has been shown for label_hold_seconds."""
    tracker = FaceTracker(LiveConfig(ema_alpha=1.0), label_hold_seconds=1.0)
    t = Track(1, np.array([0, 0, 10, 10], np.float32))
    tracker.smooth(t, np.eye(7)[2], 0.0)
    tracker.smooth(t, np.eye(7)[5], 0.5)
    assert t.label == 2  # held
    tracker.smooth(t, np.eye(7)[5], 1.2)
    assert t.label == 5


def test_live_config_file(tmp_path: Path) -> None:
    """A TOML file overrides fields; an unknown key names the close match; bad values fail."""
    good = tmp_path / "live.toml"
    good.write_text("detect_every = 3\nscale_factor = 1.2\n")
    cfg = load_live_config(good)
    assert cfg.detect_every == 3 and cfg.scale_factor == 1.2
    bad = tmp_path / "bad.toml"
    bad.write_text("detect_evry = 3\n")
    with pytest.raises(ConfigError, match="detect_every"):
        load_live_config(bad)
    bad.write_text("scale_factor = 1.0\n")
    with pytest.raises(ConfigError, match="scale_factor"):
        load_live_config(bad)


def test_window_needs_a_display(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without DISPLAY/WAYLAND_DISPLAY on Linux the window path says to use --no-window."""
    monkeypatch.setattr(display.sys, "platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(LiveError, match="--no-window"):
        check_display()


def test_overlay_draws_box_and_bars(clips, model) -> None:
    """draw_overlay changes the pixels of the box edge and beside the face."""
    (result,) = _run(model, str(clips["face"]), max_frames=1, keep_frames=True)
    img = result.frame.copy()
    out = draw_overlay(result.frame, result)
    x, y, w, h = result.faces[0].box
    assert not np.array_equal(out[y, x : x + w], img[y, x : x + w])
    assert not np.array_equal(
        out[y : y + 90, x + w + 6 : x + w + 100], img[y : y + 90, x + w + 6 : x + w + 100]
    )


def test_ten_faces_in_one_frame(tmp_path: Path, model) -> None:
    """Ten faces in a frame give ten results with their own track ids, classified together."""
    from skimage.data import astronaut

    tile = cv2.resize(cv2.cvtColor(astronaut(), cv2.COLOR_RGB2BGR)[0:260, 120:380], (160, 160))
    img = np.full((320, 800, 3), 96, np.uint8)
    for i in range(10):
        r, c = divmod(i, 5)
        img[r * 160 : (r + 1) * 160, c * 160 : (c + 1) * 160] = tile
    cv2.imwrite(str(tmp_path / "crowd.png"), img)
    (result,) = _run(model, str(tmp_path), config=LiveConfig(downscale_width=0))
    assert len(result.faces) == 10
    assert len({f.track_id for f in result.faces}) == 10
    assert all(f.probs.sum() == pytest.approx(1.0, abs=1e-5) for f in result.faces)


def test_camera_that_gives_no_frames(model, monkeypatch: pytest.MonkeyPatch) -> None:
    """A camera that opens but never delivers a frame fails at once, naming the camera."""

    class Silent:
        def isOpened(self) -> bool:
            return True

        def read(self):
            return False, None

        def get(self, prop: int) -> float:
            return 0.0

        def release(self) -> None:
            pass

    monkeypatch.setattr(capture, "_open_capture", lambda target: Silent())
    with pytest.raises(LiveError, match="camera 0 opened but gives no frames"):
        _run(model, "0")


def test_auto_backend_prefers_onnxruntime_on_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """`--backend auto` runs the faster onnxruntime on a CPU when installed, torch otherwise."""
    import importlib.util

    assert pick_backend("auto", "cpu") == "onnxruntime"
    assert pick_backend("torch", "cpu") == "torch"
    assert pick_backend("auto", "cuda") == "torch"
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert pick_backend("auto", "cpu") == "torch"


def _tilted_frame(degrees: float) -> np.ndarray:
    """A 640x480 BGR frame of the astronaut turned `degrees` counter-clockwise about her face."""
    from skimage.data import astronaut

    img = cv2.cvtColor(astronaut(), cv2.COLOR_RGB2BGR)
    m = cv2.getRotationMatrix2D((225, 120), degrees, 1.0)
    tilted = cv2.warpAffine(img, m, (512, 512), borderMode=cv2.BORDER_REPLICATE)
    frame = np.full((480, 640, 3), 96, np.uint8)
    frame[:, 64:576] = cv2.resize(tilted, (512, 480), interpolation=cv2.INTER_AREA)
    return frame


def _eye_angle(points: np.ndarray) -> float:
    """Degrees of the line from the face's right eye to its left one (0 = level)."""
    (rx, ry), (lx, ly) = points[:2]
    return float(np.degrees(np.arctan2(ly - ry, lx - rx)))


def test_yunet_finds_the_astronaut_with_landmarks() -> None:
    """YuNet finds the one face in skimage's astronaut photo, with the eyes above the nose,
    the nose above the mouth corners, the face's right eye on the left, all inside the box."""
    from skimage.data import astronaut

    det = make_detector(LiveConfig(detector="yunet"))
    assert isinstance(det, YuNetDetector) and det.colour
    img = cv2.cvtColor(astronaut(), cv2.COLOR_RGB2BGR)
    boxes, points = det.find(img, 1.0)
    assert boxes.shape == (1, 4) and points is not None and points.shape == (1, 5, 2)
    x, y, w, h = boxes[0]
    assert 150 < x + w / 2 < 280 and 60 < y + h / 2 < 180 and 60 < w < 140
    (re, le, nose, rm, lm) = points[0]
    assert re[0] < nose[0] < le[0] and rm[0] < lm[0]
    assert max(re[1], le[1]) < nose[1] < min(rm[1], lm[1])
    assert all(x <= px <= x + w and y <= py <= y + h for px, py in points[0])
    # the Haar cascade sees the same face
    (haar,) = make_detector(LiveConfig(detector="haar")).detect(
        cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), 1.0
    )
    assert iou(haar, boxes[0]) > 0.4


def test_yunet_pipeline_tracks_the_face_with_landmarks(clips, model) -> None:
    """With YuNet the sliding astronaut is found in (almost) every frame under one track id,
    and its records carry the detector's name and five landmarks inside the face's box."""
    results = _run(model, str(clips["face"]), config=LiveConfig(detector="yunet"))
    tracked = [r.faces[0] for r in results if r.faces]
    assert len(tracked) >= 0.9 * len(results)
    assert {f.track_id for f in tracked} == {tracked[0].track_id}
    assert tracked[-1].box[0] - tracked[0].box[0] > 50  # it followed the face
    rec = to_record(results[-1])
    assert rec["detector"] == "yunet" and rec["haar_ms"] is None or rec["haar_ms"] >= 0
    face = rec["faces"][0]
    x, y, w, h = face["box"]
    assert len(face["landmarks"]) == 5
    assert all(
        x - 4 <= px <= x + w + 4 and y - 4 <= py <= y + h + 4 for px, py in face["landmarks"]
    )
    haar = _run(model, str(clips["face"]), max_frames=1, config=LiveConfig(detector="haar"))
    assert to_record(haar[0])["detector"] == "haar" and haar[0].faces[0].landmarks is None


@pytest.mark.parametrize("detector", ["haar", "yunet"])
def test_a_64_pixel_face_is_found(tmp_path: Path, model, detector: str) -> None:
    """A face 64 px wide in a 640x480 frame is found at the default detection width."""
    from skimage.data import astronaut

    photo = cv2.cvtColor(astronaut(), cv2.COLOR_RGB2BGR)
    k = 64 / 100  # the astronaut's face is about 100 px of the 512 px photo
    small = cv2.resize(photo, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
    img = np.full((480, 640, 3), 96, np.uint8)
    img[120 : 120 + small.shape[0], 250 : 250 + small.shape[1]] = small
    cv2.imwrite(str(tmp_path / "small.png"), img)
    (result,) = _run(model, str(tmp_path), config=LiveConfig(detector=detector))
    (face,) = result.faces
    assert 45 < face.box[2] < 90 and 250 < face.box[0] < 250 + small.shape[1]


def test_full_resolution_retry_finds_faces_too_small_for_the_small_frame(
    tmp_path: Path, model
) -> None:
    """A 50 px face vanishes for the Haar cascade in the frame shrunk to 320 px; when that
    whole-frame scan finds nothing, the full-resolution frame is scanned and finds it."""
    from skimage.data import astronaut

    photo = cv2.cvtColor(astronaut(), cv2.COLOR_RGB2BGR)
    k = 46 / 100
    small = cv2.resize(photo, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
    img = np.full((480, 640, 3), 96, np.uint8)
    img[120 : 120 + small.shape[0], 250 : 250 + small.shape[1]] = small
    cv2.imwrite(str(tmp_path / "tiny.png"), img)
    off = LiveConfig(detector="haar", full_res_retry=False)
    assert _run(model, str(tmp_path), config=off)[0].faces == []
    (face,) = _run(model, str(tmp_path), config=LiveConfig(detector="haar"))[0].faces
    assert 250 < face.box[0] < 250 + small.shape[1]


@pytest.mark.parametrize("degrees", [20, -20])
def test_alignment_levels_tilted_eyes(degrees: float) -> None:
    """The astronaut turned 20 degrees: the crop made with the detected eyes has them level
    (the detector, run again on the crop, measures under 5 degrees); without them, the crop's
    eyes are as tilted as the frame's."""
    det = make_detector(LiveConfig(detector="yunet"))
    frame = _tilted_frame(degrees)
    small = cv2.resize(frame, (320, 240), interpolation=cv2.INTER_AREA)
    (box,), (points,) = det.find(small, 0.5, None, frame)
    assert abs(_eye_angle(points) + degrees) < 8  # the eye line follows the tilt
    grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    angles = []
    for eyes in (None, [points[:2] / 0.5]):
        crop = crop_faces(grey, [box / 0.5], 160, margin=0.25, eyes=eyes)[0]
        _, (found, *_) = det.find(cv2.cvtColor(crop, cv2.COLOR_GRAY2BGR), 1.0, None, crop)
        angles.append(_eye_angle(found))
    plain, aligned = angles
    assert abs(plain) > 10 and abs(aligned) < 5


def test_crop_framing_margin_and_shift() -> None:
    """crop_margin grows the square crop about the box's centre; crop_shift_y moves it down."""
    grey = np.zeros((200, 200), np.uint8)
    grey[100:, :] = 255  # the lower half white
    box = [(50, 50, 100, 100)]
    (plain,) = crop_faces(grey, box, 40)
    (shifted,) = crop_faces(grey, box, 40, shift_y=0.25)
    (wide,) = crop_faces(grey, box, 40, margin=0.25)
    assert plain.mean() == pytest.approx(127.5, abs=8)  # half white
    assert shifted.mean() == pytest.approx(0.75 * 255, abs=8)  # 3/4 of it below the edge
    assert wide.mean() == pytest.approx(127.5, abs=8)
    grey[:, :] = 0
    grey[40:160, 40:160] = 255  # white where a margin of 0.1 reaches, black beyond
    (m1,) = crop_faces(grey, box, 40, margin=0.1)
    (m3,) = crop_faces(grey, box, 40, margin=0.3)
    assert m1.mean() > 250 and m3.mean() < 200


def test_detector_model_errors(tmp_path: Path) -> None:
    """A missing, corrupt or non-YuNet detector model is a LiveError naming the way out."""
    with pytest.raises(LiveError, match="no YuNet model at .*--detector haar"):
        make_detector(LiveConfig(detector="yunet", detector_model=str(tmp_path / "no.onnx")))
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(YUNET.read_bytes()[:50_000])
    with pytest.raises(LiveError, match="cannot load .*bad.onnx.*--detector-model"):
        make_detector(LiveConfig(detector="yunet", detector_model=str(bad)))
    cfg = tmp_path / "live.toml"
    cfg.write_text('detector = "cnn"\n')
    with pytest.raises(ConfigError, match="detector"):
        load_live_config(cfg)


def test_overlay_draws_every_face(tmp_path: Path, model) -> None:
    """With two faces, the window marks both: each box edge and the label above each box."""
    cv2.imwrite(str(tmp_path / "two.png"), _two_faces())
    (result,) = _run(model, str(tmp_path), keep_frames=True, config=LiveConfig(detector="yunet"))
    assert len(result.faces) == 2
    img = result.frame.copy()
    out = draw_overlay(result.frame, result)
    for face in result.faces:
        x, y, w, h = face.box
        assert not np.array_equal(out[y + h // 2, x - 1 : x + 2], img[y + h // 2, x - 1 : x + 2])
        label = (slice(max(0, y - 20), y - 2), slice(x, x + 60))
        assert not np.array_equal(out[label], img[label])


def test_a_tilted_head_is_found_by_the_turned_scan(tmp_path: Path, model) -> None:
    """The astronaut turned 40 degrees: the Haar cascade misses her upright; when the whole
    frame yields nothing, the frame turned 30 degrees each way is scanned and finds her where
    YuNet (which sees her upright) puts her."""
    frame = _tilted_frame(-40)
    cv2.imwrite(str(tmp_path / "tilted.png"), frame)
    off = LiveConfig(detector="haar", turn_retry=False)
    assert _run(model, str(tmp_path), config=off)[0].faces == []
    (face,) = _run(model, str(tmp_path), config=LiveConfig(detector="haar"))[0].faces
    small = cv2.resize(frame, (320, 240), interpolation=cv2.INTER_AREA)
    (yunet,), _ = make_detector(LiveConfig(detector="yunet")).find(small, 0.5, None, frame)
    assert iou(np.asarray(face.box, np.float32), yunet / 0.5) > 0.5


@pytest.mark.parametrize("degrees", [30, -30])
def test_the_turned_scan_maps_boxes_and_eyes_back(degrees: float) -> None:
    """YuNet on the turned frame: the box comes back centred on the face as found upright,
    and the eye points come back on the tilted eye line (so the crop turns the face level),
    from the turn that makes the head upright, not the one that doubles its tilt."""
    det = make_detector(LiveConfig(detector="yunet", align=False))
    small = cv2.resize(_tilted_frame(degrees), (320, 240), interpolation=cv2.INTER_AREA)
    (upright,), _ = det.find(small, 0.5)
    (box,), (points,) = det._turned(small, 0.5)
    centre = box[:2] + box[2:] / 2
    assert np.hypot(*(centre - upright[:2] - upright[2:] / 2)) < 0.15 * upright[2]
    assert abs(_eye_angle(points) + degrees) < 6


class _SlowModel(torch.nn.Module):
    """A model that takes 20 ms per face, like a big model on a slow CPU."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(0.02 * len(x))
        return torch.zeros(len(x), len(CLASSES))


def _four_faces(tmp_path: Path) -> Path:
    from skimage.data import astronaut

    tile = cv2.resize(cv2.cvtColor(astronaut(), cv2.COLOR_RGB2BGR)[0:260, 120:380], (150, 150))
    img = np.full((480, 640, 3), 96, np.uint8)
    for x, y in [(60, 50), (380, 60), (70, 280), (390, 270)]:
        img[y : y + 150, x : x + 150] = tile
    for i in range(12):
        cv2.imwrite(str(tmp_path / f"{i:03d}.png"), img)
    return tmp_path


def test_faces_take_turns_when_they_do_not_fit_in_the_budget(tmp_path: Path, model) -> None:
    """Four faces and a model at 20 ms a face: the first frame classifies all four (and
    measures the cost), then each frame classifies one, the face waiting longest, so every
    face is renewed every fourth frame and a frame costs one face; every face keeps its label
    and probabilities in between. With the budget off, every face every frame."""
    _, meta, device = model
    folder = str(_four_faces(tmp_path))
    runs = {}
    for budget in (15.0, 0.0):
        gen = realtime_prediction(
            _SlowModel(),
            face_transform(meta),
            0.0,
            device,
            folder,
            config=LiveConfig(classify_budget_ms=budget, detect_async=False),
        )
        runs[budget] = list(gen)
    turns = runs[15.0]
    assert all(len(r.faces) == 4 for r in turns)
    assert [sum(f.classified for f in r.faces) for r in turns] == [4] + [1] * 11
    for track in {f.track_id for f in turns[0].faces}:
        renewed = [r.index for r in turns for f in r.faces if f.track_id == track and f.classified]
        assert renewed[0] == 0 and len(renewed) >= 3 and set(np.diff(renewed[1:])) == {4}
    assert np.median([r.timings["classify"] for r in turns[1:]]) < 35
    assert all(sum(f.classified for f in r.faces) == 4 for r in runs[0.0])
    assert np.median([r.timings["classify"] for r in runs[0.0][1:]]) > 75
    assert sum(face["classified"] for face in to_record(turns[3])["faces"]) == 1


class _Recorder(torch.nn.Module):
    """A model that keeps the batches it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.clone())
        return torch.zeros(len(x), len(CLASSES))


@pytest.mark.parametrize("detector", ["haar", "yunet"])
def test_each_detector_crops_with_its_own_framing(clips, model, detector: str) -> None:
    """The crop the model sees is the detector's own framing of its box (YuNet's tall boxes
    shrunk and moved up, Haar's square ones as they are), plus the config's margin and shift."""
    _, meta, device = model
    transform = face_transform(meta)
    cls = YuNetDetector if detector == "yunet" else FaceDetector
    assert (cls.framing == (0.0, 0.0)) == (detector == "haar")
    for extra in (0.0, 0.1):
        net = _Recorder()
        cfg = LiveConfig(detector=detector, align=False, crop_margin=extra, detect_async=False)
        (result,) = realtime_prediction(
            net,
            transform,
            0.0,
            device,
            str(clips["face"]),
            max_frames=1,
            config=cfg,
            keep_frames=True,
        )
        grey = cv2.cvtColor(result.frame, cv2.COLOR_BGR2GRAY)
        seen = net.seen[0][0]
        # the record's box is rounded to pixels: the crop is the closest of the two framings
        gaps = {}
        for framing in {FaceDetector.framing, YuNetDetector.framing}:
            margin, shift = framing
            crop = crop_faces(
                grey, [result.faces[0].box], meta["image_size"], margin + extra, shift
            )
            gaps[framing] = (seen - transform(torch.from_numpy(crop))[0]).abs().mean().item()
        assert min(gaps, key=gaps.get) == cls.framing and gaps[cls.framing] < 0.1
