#include <string>

#include "server/metrics.h"
#include "server/prom_text.h"
#include "server/ws_compression_stats.h"

namespace rc::server {

void ws_compression_stats::merge(const ws_compression_stats& o) {
  compressed_messages += o.compressed_messages;
  compress_bytes_in += o.compress_bytes_in;
  compress_bytes_out += o.compress_bytes_out;
  fanout_compressed += o.fanout_compressed;
  fanout_shared += o.fanout_shared;
  decompressed_messages += o.decompressed_messages;
  decompress_bytes_in += o.decompress_bytes_in;
  decompress_bytes_out += o.decompress_bytes_out;
  inflate_too_big += o.inflate_too_big;
  inflate_bad_data += o.inflate_bad_data;
  contexts += o.contexts;
  contexts_refused += o.contexts_refused;
}

void render_ws_compression_metrics(const std::vector<shard_metrics>& shards, byte_buffer& out) {
  using field = uint64_t ws_compression_stats::*;
  struct series {
    std::string_view labels;  // empty, or one label pair
    field member;
  };
  struct family {
    std::string_view name, type, help;
    std::vector<series> samples;
  };
  const family families[] = {
      {"ringcast_ws_deflate_messages_total", "counter",
       "permessage-deflate messages compressed (a fan-out event once per shard and window size) "
       "and decompressed, by direction.",
       {{"direction=\"compress\"", &ws_compression_stats::compressed_messages},
        {"direction=\"decompress\"", &ws_compression_stats::decompressed_messages}}},
      {"ringcast_ws_deflate_uncompressed_bytes_total", "counter",
       "Payload bytes of those messages before compression or after decompression, by direction.",
       {{"direction=\"compress\"", &ws_compression_stats::compress_bytes_in},
        {"direction=\"decompress\"", &ws_compression_stats::decompress_bytes_out}}},
      {"ringcast_ws_deflate_compressed_bytes_total", "counter",
       "Compressed bytes of those messages, by direction.",
       {{"direction=\"compress\"", &ws_compression_stats::compress_bytes_out},
        {"direction=\"decompress\"", &ws_compression_stats::decompress_bytes_in}}},
      {"ringcast_ws_deflate_fanout_deliveries_total", "counter",
       "Compressed topic deliveries to connections without a compression context, and those of "
       "them that reused the event's compression (compress-once hits), by result.",
       {{"result=\"compressed\"", &ws_compression_stats::fanout_compressed},
        {"result=\"shared\"", &ws_compression_stats::fanout_shared}}},
      {"ringcast_ws_deflate_contexts_refused_total", "counter",
       "Connections that asked to keep a compression context and were answered "
       "server_no_context_takeover (--ws-deflate-contexts-max reached).",
       {{"", &ws_compression_stats::contexts_refused}}},
      {"ringcast_ws_deflate_inflate_errors_total", "counter",
       "Compressed client messages refused, by the close code sent: 1009 (inflated past "
       "--ws-message-max-bytes), 1007 (corrupt compressed data).",
       {{"code=\"1009\"", &ws_compression_stats::inflate_too_big},
        {"code=\"1007\"", &ws_compression_stats::inflate_bad_data}}},
  };
  for (const family& f : families) {
    prom::family(out, f.name, f.type, f.help);
    for (size_t shard = 0; shard < shards.size(); ++shard) {
      const ws_compression_stats& s = shards[shard].ws_deflate;
      for (const series& e : f.samples) {
        out.append(f.name);
        out.push_back('{');
        if (!e.labels.empty()) {
          out.append(e.labels);
          out.push_back(',');
        }
        out.append("shard=\"");
        out.append(std::to_string(shard));
        out.append("\"} ");
        prom::value(out, static_cast<double>(s.*e.member));
      }
    }
  }
  prom::family(out, "ringcast_ws_deflate_contexts", "gauge",
               "Connections holding their own compression context (at most "
               "--ws-deflate-contexts-max per shard).");
  for (size_t shard = 0; shard < shards.size(); ++shard) {
    out.append("ringcast_ws_deflate_contexts{shard=\"");
    out.append(std::to_string(shard));
    out.append("\"} ");
    prom::value(out, static_cast<double>(shards[shard].ws_deflate.contexts));
  }
}

}  // namespace rc::server
