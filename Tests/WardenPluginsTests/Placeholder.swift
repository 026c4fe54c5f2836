// tests come with the module
