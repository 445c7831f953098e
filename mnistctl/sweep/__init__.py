"""`mnistctl sweep`: Hydra composes and fans out configurations; each job is one `mnistctl fit`.

    mnistctl sweep criterion=ce,mse optimizer=adam,sgd

command.py parses the command line and runs Hydra's multirun; plan.py expands and checks the jobs
before anything trains; job.py runs one job; summary.py and plot.py compare the jobs at the end.
"""
