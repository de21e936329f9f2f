"""One small real SER run: the embedded MiniLM (frozen) with a BT-trained head on real SST-2 sentiment pairs."""

import json

from ser.loop import SERConfig, run_ser


def test_minilm_ser_run_on_sst2_pairs_learns_and_self_labels(tmp_path, minilm, shared_data):
    cfg = SERConfig(output_dir=str(tmp_path / "run"), dataset="sst2", data_path=str(shared_data), limit=120,
                    heldout_size=40, selection_size=20, seed_fraction=0.3, max_loops=1, min_selected=2, backend="frozen_encoder",
                    rm={"model_name_or_path": minilm, "max_length": 32, "l2": 1e-4})
    metrics = run_ser(cfg)
    assert metrics["seed_only_accuracy"] > 0.6  # 20 labelled pairs already separate sentiment above chance
    first = metrics["loops"][1]
    assert first["selected"] > 0 and first["selected"] == first["selected_status1"] + first["selected_status2"]
    assert first["agreement"] > 0.6  # self-labels mostly agree with the hidden human labels
    assert (tmp_path / "run" / "ser_loops.png").stat().st_size > 0
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["key_metric"] == "ser_accuracy"
