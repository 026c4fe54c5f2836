#pragma once
// Through the postgresql/ prefix so no pkg-config flags are needed (pkg-config would also add -lpq; libpq
// is loaded at run time instead, see WardenStore/LibPQ.swift).
#include <postgresql/libpq-fe.h>
