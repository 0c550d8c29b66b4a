"""`audioembed pretrain`: BYOL-A with adversarial position-perturbed negatives.

Modules: settings (every knob, written once), data (log-mel cache + crops), augment (BYOL-A views),
negatives (position perturbations), byol (networks and losses), loop (the training loop and export),
precision (bfloat16 where native), control (stops, torchrun ranks), checkpoint (save, resume, start from a
model), history (statistics, log rows, training.json's account), transfer (host-to-GPU copies), command (the
CLI). Needs torch: the [train] extra.
"""
