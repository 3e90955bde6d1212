"""Local data-plane engines and the local control plane (moto) used by the ``local`` target."""
