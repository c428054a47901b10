"""The CLI picks OpenMP's wait policy before torch loads: threads sleep while they wait whenever
loader workers or other processes share the cores, and spin only for in-process loading."""
from action3d.cli import omp_should_wait_passively, prevalidate
from action3d.commands._hydra import compose_config


def test_threads_spin_only_when_the_training_process_loads_its_own_data():
    in_process = compose_config("train", ["data.num_workers=0"])
    with_workers = compose_config("train", ["data.num_workers=2"])
    auto = compose_config("train", ["data.num_workers=auto"])
    assert omp_should_wait_passively([in_process], {}) is False
    assert omp_should_wait_passively([with_workers], {}) is True
    assert omp_should_wait_passively([auto], {}) is True           # auto means workers on a multi-core CPU
    assert omp_should_wait_passively([in_process, with_workers], {}) is True   # a sweep: any job with workers
    assert omp_should_wait_passively([in_process], {"LOCAL_WORLD_SIZE": "2"}) is True  # torchrun: shared cores
    assert omp_should_wait_passively([], {}) is True               # --cfg job, --help: nothing is composed


def test_prevalidate_returns_every_composed_job():
    cfgs = prevalidate("train", ["data.num_workers=0,2"])
    assert [cfg.data.num_workers for cfg in cfgs] == [0, 2]
