"""run_inputs: mixed inputs, recorded (webcam-style) sessions and output naming."""

from __future__ import annotations

import cv2
import numpy as np
from inference_support import FixedDetector

from elim.inference.inputs import Input
from elim.inference.pipeline import Options, output_path, run_inputs


def _video(tmp_path, n=6):
    from elim.benchmarks.predict import make_face_video

    face = np.random.default_rng(2).integers(0, 256, (60, 60, 3), dtype=np.uint8)
    return make_face_video(tmp_path / "clip.avi", [face], n, size=(80, 60))


def test_recorded_session_is_annotated_after_the_fact(predictor, tmp_path):
    """A webcam session is recorded while streaming, then annotated with the final table."""
    video = _video(tmp_path)
    out = tmp_path / "session.avi"
    table, (outcome,) = run_inputs(
        predictor, [Input("webcam", str(video))],
        Options(detector=FixedDetector(), every=2, video_out=out, progress=False),
    )
    assert outcome.status == "ok" and outcome.outputs == (str(out),)
    assert list(table["frame"]) == [0, 2, 4]
    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 3
    cap.release()


def test_record_receives_every_processed_frame(predictor, noise_image):
    class Sink(list):
        write = list.append

    sink = Sink()
    frames = [noise_image(seed=s) for s in range(5)]
    predictor.predict_video(frames, every=2, detector=FixedDetector(), record=sink)
    assert len(sink) == 3
    np.testing.assert_array_equal(sink[1][..., ::-1], frames[2])  # written as BGR


def test_mixed_inputs_keep_order_and_report_errors(predictor, tmp_path, noise_image):
    image = tmp_path / "a.png"
    cv2.imwrite(str(image), noise_image())
    messages = []
    table, outcomes = run_inputs(
        predictor,
        [Input("image", str(image)), Input("error", "gone", "gone: file not found"),
         Input("video", str(_video(tmp_path, 2))), Input("image", str(tmp_path / "nope.png"))],
        Options(detector=FixedDetector(), progress=False),
        on_error=messages.append,
    )
    assert [o.status for o in outcomes] == ["ok", "error", "ok", "error"]
    assert list(table["source"]) == [str(image), "gone", *[str(tmp_path / "clip.avi")] * 2, str(tmp_path / "nope.png")]
    assert messages[0] == "gone: file not found" and "nope.png" in messages[1]


def test_output_path_naming():
    assert output_path("out/a.mp4", "x/clip.avi", False).as_posix() == "out/a.mp4"
    assert output_path("out/a.mp4", "x/clip.avi", True).as_posix() == "out/a_clip.mp4"
    assert output_path("out/a.mp4", "webcam:0", True).as_posix() == "out/a_webcam0.mp4"
