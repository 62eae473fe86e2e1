// Test certificates made with OpenSSL's API (see tls_test_certs.h). P-256 keys: fast to make and
// to verify, so hundreds of handshakes in one test stay cheap.
#include "tls_test_certs.h"

#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace rc::tls::testing {
namespace {

void require(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("test certificate: ") + what);
}

void add_extension(X509* cert, X509* issuer, const std::string& spec) {
  size_t eq = spec.find('=');
  std::string name = spec.substr(0, eq), value = spec.substr(eq + 1);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf(nullptr, &ctx, name.c_str(), value.c_str());
  require(ext != nullptr, spec.c_str());
  require(X509_add_ext(cert, ext, -1) == 1, "add extension");
  X509_EXTENSION_free(ext);
}

}  // namespace

cert_factory::cert_factory() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "ringcast-tls-XXXXXX").string();
  require(mkdtemp(tmpl.data()) != nullptr, "mkdtemp");
  dir_ = tmpl;
}

cert_factory::~cert_factory() {
  for (issued* i : issued_) {
    X509_free(i->cert);
    EVP_PKEY_free(i->key);
    delete i;
  }
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

std::string cert_factory::write_file(const std::string& file_name, const std::string& text) const {
  std::string path = dir_ + "/" + file_name;
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

const issued& cert_factory::make_ca(const std::string& file_name, const std::string& common_name) {
  return make(file_name, common_name, nullptr,
              {"basicConstraints=critical,CA:TRUE", "keyUsage=critical,keyCertSign,cRLSign",
               "subjectKeyIdentifier=hash"},
              -3600, 86400 * 30);
}

const issued& cert_factory::make_leaf(const std::string& file_name, const issued* issuer,
                                      const std::vector<std::string>& sans, long not_before_s,
                                      long not_after_s) {
  std::vector<std::string> ext = {"basicConstraints=critical,CA:FALSE",
                                  "keyUsage=critical,digitalSignature",
                                  "extendedKeyUsage=serverAuth", "subjectKeyIdentifier=hash"};
  if (issuer) ext.push_back("authorityKeyIdentifier=keyid");
  if (!sans.empty()) {
    std::string san = "subjectAltName=";
    for (size_t i = 0; i < sans.size(); ++i) san += (i ? "," : "") + sans[i];
    ext.push_back(san);
  }
  return make(file_name, "ringcast test leaf", issuer, ext, not_before_s, not_after_s);
}

issued& cert_factory::make(const std::string& file_name, const std::string& common_name,
                           const issued* issuer, const std::vector<std::string>& extensions,
                           long not_before_s, long not_after_s) {
  auto* out = new issued();
  issued_.push_back(out);
  out->key = EVP_EC_gen("P-256");
  require(out->key != nullptr, "key");
  X509* cert = X509_new();
  out->cert = cert;
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), serial_++);
  X509_gmtime_adj(X509_getm_notBefore(cert), not_before_s);
  X509_gmtime_adj(X509_getm_notAfter(cert), not_after_s);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1,
                             0);
  X509_set_issuer_name(cert, issuer ? X509_get_subject_name(issuer->cert) : name);
  X509_set_pubkey(cert, out->key);
  for (const std::string& e : extensions) add_extension(cert, issuer ? issuer->cert : cert, e);
  require(X509_sign(cert, issuer ? issuer->key : out->key, EVP_sha256()) > 0, "sign");

  out->cert_file = dir_ + "/" + file_name + ".crt";
  out->key_file = dir_ + "/" + file_name + ".key";
  FILE* f = std::fopen(out->cert_file.c_str(), "w");
  require(f && PEM_write_X509(f, cert) == 1, "write cert");
  std::fclose(f);
  f = std::fopen(out->key_file.c_str(), "w");
  require(f && PEM_write_PrivateKey(f, out->key, nullptr, nullptr, 0, nullptr, nullptr) == 1,
          "write key");
  std::fclose(f);
  return *out;
}

}  // namespace rc::tls::testing
