"""What the palm is for: pay, enter, prove age.

* :mod:`.gateway` -- the payment gateway interface (a real processor plugs in behind it);
* :mod:`.sandbox` -- :class:`~palmid.payments.sandbox.SandboxGateway`, the default, clearly labelled sandbox;
* :mod:`.money` -- amounts and currencies;
* :mod:`.idempotency` -- ``Idempotency-Key`` handling (exactly-once payments);
* :mod:`.attributes` -- what a person may link at enrollment (payment token, membership id, date of birth);
* :mod:`.purposes` -- the purpose vocabulary and the consent each purpose needs.
"""
