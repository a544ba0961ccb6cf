"""Layer 8, background work that outlives a web page: training jobs with their job.json state and worker
(:mod:`.background`) and a queue that runs them one after another (:mod:`.queue`). May import report and
everything below; not hub, deploy, app or cli.
"""
