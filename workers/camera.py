"""The camera pool's worker: follows one video stream, counts frames, analyses every
``fixFrame``-th one and reports progress.

``synthetic://<name>?fps=25&width=64&height=48`` is a generated stream (a bar sweeping over a
gradient), so the pool runs on machines without a camera. Real ``rtsp://`` URLs need OpenCV
(``pip install opencv-python-headless``).
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterator
from urllib.parse import parse_qs, urlparse

from pydantic import BaseModel, ConfigDict, Field

from skalds.utils.logging import logger
from skalds.worker.baseclass import (
    BaseTaskWorker,
    release_handler,
    run_before_handler,
    run_main_handler,
    update_event_handler,
)


class CameraModel(BaseModel):
    """Where the stream is and how often to analyse a frame."""

    rtsp_url: str = Field(..., alias="rtspUrl", description="rtsp://... or synthetic://name?fps=25")
    fix_frame: int = Field(10, alias="fixFrame", ge=1, description="Analyse every N-th frame")
    max_frames: int | None = Field(None, alias="maxFrames", ge=1, description="Finish after this many frames")

    model_config = ConfigDict(populate_by_name=True)


class SyntheticStream:
    """Frames generated on the fly at a steady rate: grayscale bytes with a moving bar."""

    def __init__(self, url: str) -> None:
        query = parse_qs(urlparse(url).query)
        self.fps = float(query.get("fps", ["25"])[0])
        self.width = int(query.get("width", ["64"])[0])
        self.height = int(query.get("height", ["48"])[0])
        self.seed = zlib.crc32(url.encode()) % 256
        self._next = time.monotonic()
        self._n = 0

    def frames(self) -> Iterator[bytes]:
        """Yield frames forever, paced to ``fps``."""
        row = bytes((self.seed + x) % 256 for x in range(self.width))
        while True:
            delay = self._next - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self._next = max(self._next + 1 / self.fps, time.monotonic() - 1)
            bar = self._n % self.width
            line = row[:bar] + b"\xff" + row[bar + 1 :]
            self._n += 1
            yield line * self.height


class OpenCvStream:
    """A real stream through OpenCV's VideoCapture."""

    def __init__(self, url: str) -> None:
        try:
            import cv2
        except ImportError as exc:
            raise RuntimeError(
                f"{url}: reading RTSP needs OpenCV (pip install opencv-python-headless); "
                "use synthetic://name to try without a camera"
            ) from exc
        self._capture = cv2.VideoCapture(url)
        if not self._capture.isOpened():
            raise RuntimeError(f"cannot open stream {url}")

    def frames(self) -> Iterator[bytes]:
        """Yield decoded frames as bytes until the stream ends."""
        while True:
            ok, frame = self._capture.read()
            if not ok:
                return
            yield frame.tobytes()


def open_stream(url: str) -> SyntheticStream | OpenCvStream:
    """The stream behind a URL."""
    return SyntheticStream(url) if url.startswith("synthetic://") else OpenCvStream(url)


class CameraWorker(BaseTaskWorker[CameraModel]):
    """Counts frames of its stream and analyses (mean brightness) every ``fixFrame``-th."""

    def initialize(self, data: CameraModel) -> None:
        self.config = data
        self.frames = 0
        self.analysed = 0
        self.brightness = 0.0
        self._switch_to: str | None = None

    @run_before_handler
    def open(self) -> None:
        self.stream = open_stream(self.config.rtsp_url)
        logger.info("camera %s: streaming %s", self.task_id, self.config.rtsp_url)

    @run_main_handler
    def follow(self) -> None:
        frames = self.stream.frames()
        while self.wait_if_paused():
            if self._switch_to is not None:  # the URL changed: reopen between frames
                self.stream, self._switch_to = open_stream(self._switch_to), None
                frames = self.stream.frames()
            frame = next(frames, None)
            if frame is None:
                return
            self.frames += 1
            if self.frames % self.config.fix_frame == 0:
                self.analysed += 1
                self.brightness = sum(frame[:: max(1, len(frame) // 256)]) / min(len(frame), 256)
            limit = self.config.max_frames
            if self.frames % 5 == 0 or self.frames == limit:
                self.report_progress(
                    self.frames / limit if limit else None,
                    f"{self.frames} frames, {self.analysed} analysed, brightness {self.brightness:.0f}",
                )
            if limit and self.frames >= limit:
                return

    @update_event_handler
    def update(self, data: CameraModel) -> None:
        if data.rtsp_url != self.config.rtsp_url:
            self._switch_to = data.rtsp_url
        logger.info(
            "camera %s: fixFrame %d -> %d, url %s", self.task_id, self.config.fix_frame, data.fix_frame, data.rtsp_url
        )
        self.config = data

    @release_handler
    def close(self) -> None:
        logger.info("camera %s: %d frames, %d analysed", self.task_id, self.frames, self.analysed)
