// check_address_free: refuses to start a second server on a port that is already listening.
//
// Our listeners use SO_REUSEPORT (one per shard), and the kernel lets any socket of the same user
// that also sets it join the group: a second ringcast on the same port would start "successfully"
// and silently take a share of the connections, with its own topics and queues. So before the
// group is opened, a probe socket *without* SO_REUSEPORT binds the address: that bind fails with
// EADDRINUSE exactly when some socket listens there (SO_REUSEADDR on the probe only lets it past
// connections in TIME_WAIT, as our real listeners are). When it fails, /proc/net/tcp{,6} gives
// the inodes of the sockets listening on that port and /proc/<pid>/fd maps them to processes we
// may inspect, so the message can name the other process.
//
// Thread-safety: any thread (start-up only: it reads /proc).
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "core/listener.h"

namespace rc {
namespace {

uint16_t port_of(const socket_address& addr) {
  if (addr.storage.ss_family == AF_INET6)
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&addr.storage)->sin6_port);
  return ntohs(reinterpret_cast<const sockaddr_in*>(&addr.storage)->sin_port);
}

// Inodes of the sockets in LISTEN state (st 0A) on `port`, from one /proc/net/tcp* table. Lines
// look like "0: 0100007F:1F90 00000000:0000 0A ... uid timeout inode ...".
void listening_inodes(const char* table, uint16_t port, std::set<unsigned long>& out) {
  std::ifstream in(table);
  std::string line;
  std::getline(in, line);  // the header
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string slot, local, remote, state, queues, timer, retransmits, uid, timeout;
    unsigned long inode = 0;
    if (!(f >> slot >> local >> remote >> state >> queues >> timer >> retransmits >> uid >>
          timeout >> inode))
      continue;
    size_t colon = local.rfind(':');
    if (colon == std::string::npos || state != "0A") continue;
    if (std::strtoul(local.c_str() + colon + 1, nullptr, 16) == port && inode != 0)
      out.insert(inode);
  }
}

// "name (pid N)" for every other process holding one of `inodes`; empty when none is visible
// (another user's processes need privileges to inspect).
std::string owners_of(const std::set<unsigned long>& inodes) {
  std::string owners;
  DIR* proc = opendir("/proc");
  if (!proc) return owners;
  pid_t self = getpid();
  while (dirent* e = readdir(proc)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (pid <= 0 || *end != '\0' || pid == self) continue;
    std::string fd_dir = "/proc/" + std::string(e->d_name) + "/fd";
    DIR* fds = opendir(fd_dir.c_str());
    if (!fds) continue;
    bool holds = false;
    while (dirent* fd = readdir(fds)) {
      char target[64];
      std::string link = fd_dir + "/" + fd->d_name;
      ssize_t n = readlink(link.c_str(), target, sizeof target - 1);
      if (n <= 0) continue;
      target[n] = '\0';
      unsigned long inode = 0;
      if (std::sscanf(target, "socket:[%lu]", &inode) == 1 && inodes.count(inode)) {
        holds = true;
        break;
      }
    }
    closedir(fds);
    if (!holds) continue;
    std::ifstream comm("/proc/" + std::string(e->d_name) + "/comm");
    std::string name;
    std::getline(comm, name);
    if (!owners.empty()) owners += ", ";
    owners += (name.empty() ? "?" : name) + " (pid " + std::to_string(pid) + ")";
  }
  closedir(proc);
  return owners;
}

}  // namespace

std::string check_address_free(const socket_address& addr) {
  uint16_t port = port_of(addr);
  if (port == 0) return {};  // the kernel picks a free port
  int fd = socket(addr.storage.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::string("socket: ") + strerror(errno);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  int rc = bind(fd, reinterpret_cast<const sockaddr*>(&addr.storage), addr.length);
  int err = errno;
  close(fd);
  if (rc == 0) return {};
  if (err != EADDRINUSE) return "cannot listen on " + addr.text + ": " + strerror(err);
  std::set<unsigned long> inodes;
  listening_inodes("/proc/net/tcp", port, inodes);
  listening_inodes("/proc/net/tcp6", port, inodes);
  std::string owners = inodes.empty() ? "another socket" : owners_of(inodes);
  if (owners.empty()) owners = "another process (not visible to this user)";
  return "cannot listen on " + addr.text + ": port " + std::to_string(port) +
         " is already in use by " + owners +
         "; refusing to share it (SO_REUSEPORT would split the traffic between both servers)";
}

}  // namespace rc
