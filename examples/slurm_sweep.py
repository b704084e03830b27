"""A notebook sweep on a SLURM cluster: dask-jobqueue starts the Dask workers as SLURM jobs,
the sweep sends one papermill run to each free worker.

    pip install dask-jobqueue          # on the cluster's login node, in the project's .venv
    .venv/bin/python examples/slurm_sweep.py --queue gpu --jobs 8

Each SLURM job runs one Dask worker with --cores cores (the sweep gives each notebook run
that many threads) and --memory; edit `job_script_prologue` for your modules or
environment. The runs land in outputs/02_global_inr/ as with a local sweep; a rerun skips
the complete ones. The same cluster can serve the command line instead:

    .venv/bin/python -m inr_utils.pipeline sweep notebooks/02_global_inr.py -p R 4 6 8 \\
        -p DATA sunnybrook:SCD0000501/slice_046 sunnybrook:SCD0000501/slice_047 \\
        --executor dask --scheduler <the address this script prints>
"""
import argparse
from pathlib import Path

from dask_jobqueue import SLURMCluster

from inr_utils import REPO_ROOT
from inr_utils.sweep import sweep

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--queue", default=None, help="SLURM partition")
ap.add_argument("--account", default=None)
ap.add_argument("--jobs", type=int, default=4, help="SLURM jobs, one Dask worker each")
ap.add_argument("--cores", type=int, default=8, help="cores per job (= threads of each notebook run)")
ap.add_argument("--memory", default="32GB")
ap.add_argument("--walltime", default="04:00:00")
args = ap.parse_args()

cluster = SLURMCluster(queue=args.queue, account=args.account, cores=args.cores, processes=1, memory=args.memory,
                       walltime=args.walltime, job_script_prologue=[f"cd {REPO_ROOT}", "source .venv/bin/activate"])
cluster.scale(jobs=args.jobs)
print("scheduler:", cluster.scheduler_address)
try:
    result = sweep(Path(REPO_ROOT) / "notebooks" / "02_global_inr.py",
                   {"R": [4, 6, 8], "DATA": ["sunnybrook:SCD0000501/slice_051", "sunnybrook:SCD0000501/slice_046"]},
                   executor="dask", scheduler=cluster.scheduler_address, threads=args.cores)
    print(result.table)
    for run, message in result.failed:
        print("FAILED", run.label, message)
finally:
    cluster.close()
