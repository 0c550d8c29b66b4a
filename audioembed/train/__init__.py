"""`audioembed pretrain`: BYOL-A with adversarial position-perturbed negatives.

Modules: settings (every knob), data (log-mel cache + crops), augment (BYOL-A views),
negatives (position perturbations), byol (networks and losses), loop (the training loop,
checkpoints, DDP), transfer (host-to-GPU copies), command (the CLI). The model card is
audioembed/card.py. Needs torch: the [train] extra.
"""
