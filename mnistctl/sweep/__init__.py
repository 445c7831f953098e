"""`mnistctl sweep`: Hydra composes and fans out configurations; each job is one `mnistctl fit`.

    mnistctl sweep criterion=ce,mse optimizer=adam,sgd

command.py parses the command line and runs Hydra's multirun. Before it, tree.py finds (or generate.py
builds, once per set of installed versions) the Hydra tree to compose from, and plan.py makes the plan
the dry run shows: overrides.py parses them, checks.py checks their keys, compose.py composes each job as
the multirun will and values.py checks its values (with mnistctl/ranges.py); folder.py checks and claims
the sweep folder. job.py runs one job in the folder job_folder.py gives it, forked from the warm-start
server (warm_start.py, warm_server.py) where the launcher runs jobs on this machine; a search (Optuna)
keeps its study in the sweep folder (study.py) and its jobs report to their trials (trial_reporter.py),
which may prune them. summary.py, metrics.py and plot.py compare the jobs at the end; show.py prints
--dry-run, --cfg and --info.
"""
