"""Running ``train`` in child processes: several hparams files (``several``), the jobs and the
slots they run in (``jobs``), and signals passed on to the children (``forwarder``).

May import the standard library, ``torch_lab.text``, ``torch_lab.errors``, ``torch_lab.signals``
and ``torch_lab.storage.run_dir`` only (torch inside ``job_slots``, to count GPUs;
``torch_lab.experiment`` and ``torch_lab.runs`` inside ``seeds.grown``, to find the group to grow).
"""
