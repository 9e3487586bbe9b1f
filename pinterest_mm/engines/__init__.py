"""Where the heavy build steps can run besides this process: optional engines (Ray), imported only when chosen."""
