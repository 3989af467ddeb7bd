"""The live pipeline: capture -> face detection -> classification -> smoothing -> results.

    source --(capture thread)--> frame --320 wide--> YuNet or the Haar cascade (every N frames,
    in its own thread) --> tracker (template matching between detections) --> crops, eyes
    levelled, 48x48 uint8 --> `to_input` (the training preprocessing) --> model, all faces of
    a frame in one batch --> per-track EMA of probabilities + label hold --> FrameResult

`pipeline.realtime_prediction(model, transform, label_hold_seconds, device, source)` has the
paper's shape and is what `fer-tui live` and the Live screen (through that command) call. It
opens the source at once, so a bad camera or video fails before the first frame, and returns a
generator of `FrameResult`.

Capture policy: cameras and URLs hand on only the newest frame (a slow model drops frames
instead of building latency); video files and image folders give every frame, in order, unless
`realtime=True`, which paces a file at its own frame rate and drops like a camera (the
benchmark uses that to stand in for a webcam).

Timings per frame, in ms: `capture` (decode, in the capture thread), `detect` (the part of
detection and tracking that the frame waited for), `classify` (crop, preprocess, model,
softmax) and `total` (from the frame being handed over to its result).

Modules, in the order a frame meets them:

    config.py     LiveConfig: detection, tracking and smoothing parameters (`--live-config`)
    capture.py    cameras, video files, image folders and URLs; the capture thread
    detection.py  YuNet and the Haar cascade, in line or in a background thread
    models/       the YuNet ONNX file, its licence and where it comes from
    boxes.py      box overlap and clipping
    tracking.py   faces followed between detections; probabilities smoothed per face
    pipeline.py   crop -> model -> FrameResult, one generator per source
    results.py    FaceResult, FrameResult and the per-frame JSON record
    window.py     the OpenCV window and its overlay
    display.py    whether a window can open here (no cv2: the TUI asks it too)

Only `config` and `display` import neither torch nor cv2.
"""
