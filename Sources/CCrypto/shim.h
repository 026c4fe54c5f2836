#pragma once
// SHA-256 is used through libcrypto's low-level SHA256_* functions: the EVP path initialises OpenSSL on
// first use (reads openssl.cnf, fetches the default provider), ~1.7 ms of every one-shot CLI run. They are
// deprecated in OpenSSL 3, not removed; this keeps the deprecation attributes off the Swift import.
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/crypto.h>
