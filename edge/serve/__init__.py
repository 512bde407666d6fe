"""``edge-serve``: the device as an HTTP classification service with a live camera page.

One process, one model, optionally one camera::

    GET  /              the page: live camera with the current answer, history, upload box
    GET  /api/info      model, classes, runtime, preprocessing, versions, camera status
    POST /api/classify  an image (raw body or multipart) → the ``edge-classify --json`` object
    GET  /api/stream    the camera's frames as MJPEG
    GET  /api/events    every classified frame's answer as server-sent events
    GET  /metrics       Prometheus text format

Needs the ``[serve]`` extra (Starlette, uvicorn, python-multipart); nothing here imports
TensorFlow.  Modules: :mod:`.cli` (the command), :mod:`.app` (the routes),
:mod:`.answer` (the one place that calls the photo pipeline and the model),
:mod:`.camera_loop` (the background camera thread), :mod:`.streams` (MJPEG and events),
:mod:`.uploads` (body limits, multipart), :mod:`.guard` (token, headers, request metrics),
:mod:`.apierror` (JSON errors), :mod:`.prometheus` (metrics), :mod:`.server` (uvicorn).
"""
