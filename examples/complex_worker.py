"""The seed README's complex worker: sub-tasks run in order, each retried on failure, with a
feature switch. Run it alone with ``python examples/complex_worker.py``. The class ships with
Skalds (``skalds.workers.complex``), so the demo pool runs ``examples/all_workers.yml`` as is."""

from skalds.workers.complex import ComplexDataModel, ComplexWorker, SubTask

__all__ = ["ComplexDataModel", "ComplexWorker", "SubTask"]

if __name__ == "__main__":
    worker = ComplexWorker()
    worker.initialize(
        ComplexDataModel(
            job_id="job-12345",
            retries=2,
            sub_tasks=[
                SubTask(name="Download Data", duration=0.5, fail_chance=0.2),
                SubTask(name="Process Data", duration=0.5),
            ],
        )
    )
    worker.start()
