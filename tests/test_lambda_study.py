from inr_utils import lambda_study


def test_lambda_study_verdicts():
    rec = {"conditional": {"-5": {"psnr": 30.0}, "0": {"psnr": 25.0}}, "separate": {"-5": {"psnr": 30.2}, "0": {"psnr": 25.9}},
           "seconds_conditional": 30.0, "seconds_separate": 20.0, "auto_log10_lambda": -2.0, "oracle_log10_lambda": -2.5,
           "psnr_auto": 31.0, "psnr_oracle": 31.3, "smoothness_monotone": False, "smoothness_rises_on": [[-1.0, -0.5]]}
    s = lambda_study.run_summary(rec)
    verdicts = [(t["value"], t["met"]) for t in s["targets"]]
    assert verdicts == [("0.30 dB", True), ("worst -0.90 dB", False), ("3.00x", False)]
    assert s["tables"][1]["rows"][0][2] == "3.00" and s["tables"][1]["rows"][0][-1] == "no: rises on [-1, -0.5]"


def test_settings_are_checked_with_the_notebooks_names():
    import pytest

    from inr_utils.lambda_study import LambdaStudyConfig

    with pytest.raises(ValueError, match="REPRESENTATION must be one of"):
        LambdaStudyConfig(representation="lowrank")
    with pytest.raises(ValueError, match="LOG_LAMBDA_MIN < LOG_LAMBDA_MAX"):
        LambdaStudyConfig(log_lambda_range=(0.0, -5.0))
    with pytest.raises(ValueError, match="every SHOW value"):
        LambdaStudyConfig(show=[-6.0])
    with pytest.raises(ValueError, match="DEVICE must be"):
        LambdaStudyConfig(device="gpu")
