"""The user's files, checked before torch loads: the hparams schema and ``--set``
(``hparams``), the static checks of ``__main__.py`` and Trainer keys (``precheck``), running user
code (``user_code``), loading an experiment (``loading``) and what its config functions return
(``config``).

Light: may import ``torch_lab.errors``, ``torch_lab.utils``, ``torch_lab.storage`` and the
standard library; torch and Lightning only inside functions that run after ``__main__.py`` did.
"""

from torch_lab.experiment.config import Experiment, dataloaders_of, infer_weights
from torch_lab.experiment.loading import load_experiment, load_hparams
from torch_lab.experiment.user_code import run_script

__all__ = ["Experiment", "dataloaders_of", "infer_weights", "load_experiment", "load_hparams", "run_script"]
