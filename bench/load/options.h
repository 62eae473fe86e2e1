// load_options: everything ringcast-load is told on its command line, resolved and checked.
//
// One struct for all modes: common settings first, then each mode's own group. A mode's check()
// (mode.h) refuses settings that make no sense for it and fills in what depends on others.
//
// Thread-safety: built by main before the shards start; read-only afterwards.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/listener.h"

namespace rc::load {

enum class sub_protocol : uint8_t { ws, sse };
enum class pub_protocol : uint8_t { http, ws };
enum class loss_policy : uint8_t { fail, allow };
// fanout --dialect: the server's protocol (fanout_dialect.h).
enum class fanout_dialect : uint8_t { ringcast, nchan, pushpin, uws };

struct load_options {
  std::string mode;

  // Where and how much.
  std::string target = "127.0.0.1:8080";         // HOST:PORT of the server (the first of targets)
  std::vector<std::string> targets;              // --target, repeatable: several servers (nodes)
  std::vector<socket_address> target_addresses;  // resolved from targets; see targets.h
  std::string host_header;                       // Host: field; default: the first target
  uint32_t connections = 100;
  unsigned threads = 1;
  std::string cpus;           // CPU list to pin client threads to; empty: don't pin
  std::vector<int> cpu_list;  // resolved from cpus
  double duration_s = 5.0;    // the measured window
  double warmup_s = 1.0;      // load runs this long before the window opens
  uint32_t drain_ms = 2000;   // after the window: wait this long at most for stragglers

  // Connections.
  uint32_t source_ips = 0;             // spread over 127.0.0.2.. (0: only when needed)
  uint32_t connect_concurrency = 256;  // connects in flight, all threads together
  uint32_t connect_timeout_ms = 10000;
  uint32_t ready_timeout_ms = 60000;  // every connection must be ready within this

  // Reporting.
  std::string json_path;         // also write the report here as JSON
  uint32_t timeline_ms = 1000;   // the JSON timeline's interval
  std::vector<int> server_pids;  // measure these processes' CPU and RSS, summed (the servers)
  std::vector<int> aux_pids;     // ... and these apart (e.g. the NATS servers behind them)
  loss_policy loss = loss_policy::fail;
  bool quiet = false;

  // Receive buffers per client thread.
  uint32_t recv_buffers = 8192;
  uint32_t recv_buffer_bytes = 4096;

  // http
  std::string path = "/healthz";
  uint32_t pipeline = 1;
  std::vector<std::string> headers;  // extra "Name: value" fields

  // WebSocket connections (ws-echo, fanout): offer permessage-deflate (connection.h)
  bool deflate = false;

  // ws-echo
  uint32_t message_bytes = 20;
  bool binary = false;

  // fanout
  sub_protocol sub = sub_protocol::ws;
  pub_protocol pub = pub_protocol::http;
  double rate = 1000;          // publications per second; 0: as fast as the window allows
  uint32_t window = 16;        // rate 0: publications not yet delivered to everyone
  uint32_t pub_inflight = 64;  // publish requests awaiting their answer
  uint32_t payload_bytes = 0;  // pad the publication's JSON to at least this size
  bool token_fill = false;     // pad with chat-completion token chunks, not 'x' (--payload-fill)
  std::string topic;           // default: a fresh name per run
  std::string pub_target;      // the publisher's server; default: the first target
  socket_address pub_target_address;
  bool sparse_seq = false;  // sequence numbers come from a shared stream: increasing, not +1
  fanout_dialect dialect = fanout_dialect::ringcast;
  uint32_t subscribe_concurrency = 0;  // subscribers connecting at once; 0: all
  uint32_t publish_after_ms = 0;       // the first publication this long after all are ready

  // ws-idle, ws-chat; ws-echo (default /echo there)
  std::string ws_path = "/ws";

  // sse-chat, ws-chat (max_tokens also broker)
  std::string model = "ringcast-mock";
  uint32_t max_tokens = 16;
  uint32_t streams_per_conn = 1;  // ws-chat: chat.completion actions in flight per connection
  double first_token_ms = 0;      // the server's --mock-first-token-ms, subtracted from TTFT
  double tokens_per_s = 0;        // the server's --mock-tokens-per-s, for jitter (0: none)
  double stagger_ms = 0;          // spread the connections' first requests over this long

  // broker (rate is shared with fanout)
  uint32_t users = 1000;
  double stream_fraction = -1;       // of admitted messages to stream; < 0: automatic
  uint32_t stream_connections = 32;  // connections that stream admitted messages
  uint32_t pace_us = 100;            // send what the schedule owes this often
};

}  // namespace rc::load
