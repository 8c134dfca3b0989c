"""Contract tests every registered representation must pass, and small structure sets for tests.

A plugin author runs the contract on their representation with::

    from aiida_matembed.testing import run_contract
    run_contract(MyRepresentation())
"""

from .contract import CONTRACT_CHECKS, run_contract
from .structures import bad_inputs, contract_structures

__all__ = ('CONTRACT_CHECKS', 'bad_inputs', 'contract_structures', 'run_contract')
