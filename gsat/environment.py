"""The environment a job (and each of its services) runs with.

At submit time gqsub keeps a clean, login-like set of the submitter's
variables (KEEP and LC_*), the whole environment with -V, plus -v
VAR[=value].  At start the controller adds the job type's environment and
the GSAT_* variables of SPEC §5.  Stdlib only.
"""

import os

KEEP = ("HOME", "USER", "LOGNAME", "SHELL", "PATH", "LANG", "LANGUAGE")


def at_submit(environ: dict, export_all: bool, variables: list[str]) -> dict:
    """The variables a submission keeps from the submitter's `environ`."""
    if export_all:
        env = dict(environ)
    else:
        env = {k: v for k, v in environ.items() if k in KEEP or k.startswith("LC_")}
    for item in variables:
        name, eq, value = item.partition("=")
        if eq:
            env[name] = value
        elif name in environ:
            env[name] = environ[name]
    env.setdefault("PATH", os.defpath)
    return env


def for_run(job_id: int, spec: dict, run: int, host: str, home: str, jobdir: str,
            jobtype_env: dict) -> dict:
    """The complete environment of run `run` of a job."""
    import string
    env = dict(spec["env"])
    extra = {"UID": str(os.getuid()), **env}
    for key, value in jobtype_env.items():
        env[key] = string.Template(value).safe_substitute(extra)
    env.update({
        "GSAT_JOBID": str(job_id),
        "GSAT_O_JOBID": str(job_id),
        "GSAT_JOBNAME": spec["name"],
        "GSAT_O_WORKDIR": spec["workdir"],
        "GSAT_O_HOME": spec["submit_home"],
        "GSAT_O_LOGNAME": spec["user"],
        "GSAT_O_HOST": host,
        "GSAT_O_PATH": env.get("PATH", os.defpath),
        "GSAT_SUBMIT_HOST": spec["submit_host"],
        "GSAT_SUBMIT_DIR": spec["submit_dir"],
        "GSAT_HOME": home,
        "GSAT_JOBDIR": jobdir,
        "GSAT_JOBTYPE": spec["jobtype"],
        "GSAT_RUN": str(run),
    })
    array = spec.get("array")
    if array:
        env["GSAT_ARRAY_INDEX"] = str(array["index"])
        env["GSAT_ARRAY_ID"] = str(array["id"])
    return env
