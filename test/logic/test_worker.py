import threading
import time

from polling import wait_until

from vla_ros.logic.worker import TriggeredWorker


def test_each_accepted_trigger_runs_the_job_once_on_another_thread():
    threads: list[threading.Thread] = []
    worker = TriggeredWorker(lambda: threads.append(threading.current_thread()), print)
    for expected in range(1, 4):
        assert wait_until(lambda: not worker.busy)
        assert worker.trigger()
        assert wait_until(lambda n=expected: len(threads) == n)
    assert worker.stop()
    assert threading.current_thread() not in threads


def test_a_trigger_while_the_job_runs_is_dropped_not_queued():
    release = threading.Event()
    runs: list[int] = []

    def job() -> None:
        runs.append(1)
        release.wait(5.0)

    worker = TriggeredWorker(job, print)
    assert worker.trigger()
    assert wait_until(lambda: len(runs) == 1)
    assert not worker.trigger()
    assert not worker.trigger()
    release.set()
    assert wait_until(lambda: not worker.busy)
    assert worker.stop()
    assert runs == [1]


def test_an_exception_is_reported_and_the_thread_keeps_serving():
    errors: list[BaseException] = []
    calls: list[int] = []

    def job() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("model exploded")

    worker = TriggeredWorker(job, errors.append)
    assert worker.trigger()
    assert wait_until(lambda: errors and not worker.busy)
    assert worker.trigger()
    assert wait_until(lambda: len(calls) == 2)
    assert [str(e) for e in errors] == ["model exploded"]
    assert worker.stop()


def test_stop_waits_for_a_running_job_and_refuses_later_triggers():
    started, finished = threading.Event(), threading.Event()

    def job() -> None:
        started.set()
        time.sleep(0.05)
        finished.set()

    worker = TriggeredWorker(job, print)
    assert worker.trigger()
    assert started.wait(5.0)
    assert worker.stop()
    assert finished.is_set()
    assert not worker.trigger()
