static const char m[] __attribute__((section(".modinfo"), used)) = "license=GPL\0name=lpsec_test\0vermagic=6.1.0 SMP mod_unload modversions ";
