"""`python -m kiln.driver.repl <fd>`: the REPL process of one execution context."""

from kiln.driver.repl.process import main

main()
