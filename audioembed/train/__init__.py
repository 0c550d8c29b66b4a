"""`audioembed pretrain`: BYOL-A with adversarial position-perturbed negatives.

Modules: settings (every knob), data (log-mel cache + crops), augment (BYOL-A views),
negatives (position perturbations), byol (networks and losses), loop (the training loop,
checkpoints, DDP), card (model card), command (the CLI). Needs torch: the [train] extra.
"""
