"""run_inputs: mixed inputs, recorded (webcam-style) sessions and output naming."""

from __future__ import annotations

import numpy as np
from inference_support import FixedDetector

from elim.deps import cv2
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


def test_run_job_collects_runs_and_writes(run_dir, tmp_path, noise_image):
    import pandas as pd

    from elim.inference.pipeline import Job, run_job

    folder = tmp_path / "photos"
    folder.mkdir()
    for k in range(2):
        cv2.imwrite(str(folder / f"{k}.png"), noise_image(seed=k))
    out = tmp_path / "va.csv"
    messages = []
    report = run_job(
        Job(run_dir, [folder, tmp_path / "gone.jpg"], Options(detector="none", progress=False), out=out),
        on_error=messages.append,
    )
    assert report.counts == {"ok": 2, "no_face": 0, "error": 1} and report.failed
    assert pd.read_csv(out)["status"].tolist() == ["ok", "ok", f"error: {tmp_path / 'gone.jpg'}: file not found"]
    assert report.summary()["out"] == str(out) and report.summary()["rows"] == 3
    assert report.summary_line() == f"3 input(s): 2 ok, 0 without a face, 1 failed; 3 row(s) -> {out}"
    assert messages == [f"{tmp_path / 'gone.jpg'}: file not found"]


def test_job_options_are_checked_before_any_work(tmp_path):
    import pytest

    from elim.errors import ElimError
    from elim.inference.pipeline import Job, run_job

    never = tmp_path / "no-run"  # never loaded: every check comes first
    for options, message in [
        (Options(batch_size=0), "batch_size .--batch-size. must be >= 1"),
        (Options(detect_every=0), "detect_every"),
        (Options(smoothing="median:3"), "bad smoothing"),
        (Options(video_out=tmp_path / "a.gif"), "unsupported video extension"),
    ]:
        with pytest.raises(ElimError, match=message):
            run_job(Job(never, ["x.jpg"], options))
    with pytest.raises(ElimError, match="detect_size"):
        run_job(Job(never, ["x.jpg"], detect_size=0))
    with pytest.raises(ElimError, match="nothing to predict"):
        run_job(Job(never, []))


def test_choose_detector(predictor):
    import pytest

    from elim.errors import ElimError
    from elim.inference.pipeline import choose_detector

    assert choose_detector(predictor, "none").name == "none"
    fixed = FixedDetector()
    assert choose_detector(predictor, fixed) is fixed
    mtcnn = choose_detector(predictor, "mtcnn", detect_size=320)
    assert mtcnn.name == "mtcnn" and mtcnn.max_side == 320
    yunet = choose_detector(predictor, "yunet", detect_size=480, threads=1)
    assert yunet.name == "yunet" and yunet.max_side == 480 and yunet.threads == 1
    with pytest.raises(ElimError, match="--detector-weights is a YuNet ONNX file"):
        choose_detector(predictor, "mtcnn", weights="x.onnx")


def test_report_counts_dropped_frames_and_threads():
    import pandas as pd

    from elim.inference.pipeline import Outcome, Report
    from elim.inference.threads import plan_threads

    report = Report(pd.DataFrame({"status": ["ok"]}), [Outcome("webcam:0", "webcam", "ok", dropped=12)],
                    threads=plan_threads(cpus=2))
    assert report.summary()["dropped_frames"] == 12
    assert report.summary()["threads"] == {"torch": 1, "detector": 1, "opencv": 1, "cpus": 2}
    assert report.summary_line().endswith("1 row(s); 12 webcam frame(s) dropped to keep up")
