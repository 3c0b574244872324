// YAML flattening, typed scalar parsing with precise errors, and the nested dumper used by
// every Schema.
#include "arch/schema.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <sstream>

namespace tpu::arch {

namespace {

constexpr std::size_t kMaxConfigBytes = 1 << 20;  // configs are small; refuse anything huge
constexpr int kMaxNodes = 100000;                 // bounds alias expansion ("billion laughs")

bool is_prefix_of_known(const std::string& prefix, const std::vector<std::string>& keys) {
  std::string p = prefix + ".";
  return std::any_of(keys.begin(), keys.end(),
                     [&](const std::string& k) { return k.compare(0, p.size(), p) == 0; });
}

bool is_known(const std::string& key, const std::vector<std::string>& keys) {
  return std::find(keys.begin(), keys.end(), key) != keys.end();
}

std::string strip(const std::string& s) {
  std::size_t b = s.find_first_not_of(" \t");
  std::size_t e = s.find_last_not_of(" \t");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

YAML::Node parse_root(const std::string& text, const std::string& name) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    SourceLocation where{name, e.mark.is_null() ? 0 : e.mark.line + 1,
                         e.mark.is_null() ? 0 : e.mark.column + 1};
    throw InputError(where, "YAML syntax error: " + e.msg);
  }
  if (!root.IsMap()) {
    throw InputError(yaml_location(root, name), "<document>", "a mapping of keys to values",
                     describe_yaml(root));
  }
  return root;
}

}  // namespace

SourceLocation yaml_location(const YAML::Node& n, const std::string& file) {
  YAML::Mark m = n.Mark();
  if (m.is_null()) return SourceLocation{file, 0, 0};
  return SourceLocation{file, m.line + 1, m.column + 1};
}

std::string describe_yaml(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Null:
      return "nothing (null)";
    case YAML::NodeType::Scalar: {
      std::string s = n.Scalar();
      if (s.size() > 60) s = s.substr(0, 57) + "...";
      return "'" + s + "'";
    }
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    default:
      return "nothing";
  }
}


RawConfig RawConfig::from_file(const std::string& path, const std::vector<std::string>& keys) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(SourceLocation{path, 0, 0}, "cannot open file");
  std::string text;
  char buf[65536];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    text.append(buf, static_cast<std::size_t>(in.gcount()));
    if (text.size() > kMaxConfigBytes) {
      throw InputError(SourceLocation{path, 0, 0}, "<file>", "a config of at most 1 MiB",
                       "a larger file");
    }
  }
  return from_string(text, path, keys);
}

RawConfig RawConfig::from_string(const std::string& text, const std::string& name,
                                 const std::vector<std::string>& keys) {
  if (text.size() > kMaxConfigBytes) {
    throw InputError(SourceLocation{name, 0, 0}, "<file>", "a config of at most 1 MiB",
                     "a larger text");
  }
  RawConfig raw;
  raw.file_ = name;
  raw.flatten(parse_root(text, name), "", keys);
  return raw;
}

void RawConfig::flatten(const YAML::Node& node, const std::string& prefix,
                        const std::vector<std::string>& keys) {
  int budget = kMaxNodes;
  std::function<void(const YAML::Node&, const std::string&)> walk =
      [&](const YAML::Node& n, const std::string& pre) {
        for (auto it = n.begin(); it != n.end(); ++it) {
          if (--budget < 0) {
            throw InputError(yaml_location(it->first, file_), pre.empty() ? "<document>" : pre,
                             "at most 100000 nodes", "more (alias expansion?)");
          }
          if (!it->first.IsScalar()) {
            throw InputError(yaml_location(it->first, file_), pre.empty() ? "<document>" : pre,
                             "a plain key", describe_yaml(it->first));
          }
          std::string key = pre.empty() ? it->first.Scalar() : pre + "." + it->first.Scalar();
          SourceLocation where = yaml_location(it->first, file_);
          if (is_known(key, keys)) {
            if (values_.count(key)) {
              throw InputError(where, key, "each key once", "it given twice");
            }
            values_[key] = RawValue{it->second, where, {}};
          } else if (is_prefix_of_known(key, keys)) {
            if (!it->second.IsMap()) {
              throw InputError(where, key, "a mapping (section with keys below it)",
                               describe_yaml(it->second));
            }
            walk(it->second, key);
          } else {
            std::string hint = closest_key(key, keys);
            throw InputError(where, key,
                             hint.empty() ? std::string("a known key")
                                          : "a known key (did you mean '" + hint + "'?)",
                             "an unknown key");
          }
        }
      };
  walk(node, prefix);
}

void RawConfig::apply_override(const std::string& assignment,
                               const std::vector<std::string>& keys, const std::string& option) {
  SourceLocation where{"<command line>", 0, 0};
  std::size_t eq = assignment.find('=');
  if (eq == std::string::npos) {
    throw InputError(where, option, "KEY=VALUE", "'" + assignment + "'");
  }
  std::string key = strip(assignment.substr(0, eq));
  std::string value = strip(assignment.substr(eq + 1));
  if (!is_known(key, keys)) {
    std::string hint = closest_key(key, keys);
    throw InputError(where, option + " " + key,
                     hint.empty() ? std::string("a known key")
                                  : "a known key (did you mean '" + hint + "'?)",
                     "an unknown key");
  }
  YAML::Node node;
  try {
    node = YAML::Load(value);
  } catch (const YAML::Exception& e) {
    throw InputError(where, option + " " + key, "a YAML value", "'" + value + "' (" + e.msg + ")");
  }
  values_[key] = RawValue{node, where, option};
}

const RawValue* RawConfig::find(const std::string& key) const {
  auto it = values_.find(key);
  return it == values_.end() ? nullptr : &it->second;
}

SourceLocation RawConfig::where(const std::string& key) const {
  if (const RawValue* v = find(key)) return v->where;
  return SourceLocation{file_, 0, 0};
}

std::string RawConfig::label(const std::string& key) const {
  const RawValue* v = find(key);
  return v && !v->option.empty() ? v->option + " " + key : key;
}

// ---- typed parsing ----

namespace {

[[noreturn]] void bad(const RawValue& v, const std::string& key, const std::string& expected) {
  throw InputError(v.where, v.option.empty() ? key : v.option + " " + key, expected,
                   describe_yaml(v.node));
}

const std::string& scalar_or_throw(const RawValue& v, const std::string& key,
                                   const std::string& expected) {
  if (!v.node.IsScalar()) bad(v, key, expected);
  return v.node.Scalar();
}

// Binary (KiB = 1024) and decimal (KB = 1000) size suffixes for byte-valued keys.
bool split_suffix(const std::string& text, std::string* number, int64_t* scale) {
  static const std::pair<const char*, int64_t> kSuffixes[] = {
      {"KiB", int64_t{1} << 10}, {"MiB", int64_t{1} << 20}, {"GiB", int64_t{1} << 30},
      {"TiB", int64_t{1} << 40}, {"KB", 1000},               {"MB", 1000000},
      {"GB", 1000000000},        {"TB", 1000000000000}};
  for (const auto& [suffix, s] : kSuffixes) {
    std::string suf(suffix);
    if (text.size() > suf.size() && text.compare(text.size() - suf.size(), suf.size(), suf) == 0) {
      *number = strip(text.substr(0, text.size() - suf.size()));
      *scale = s;
      return true;
    }
  }
  *number = text;
  *scale = 1;
  return false;
}

bool parse_int64(const std::string& text, int64_t* out) {
  if (text.empty()) return false;
  std::string t;
  for (char ch : text) {
    if (ch != '_') t += ch;  // allow 1_000_000
  }
  const char* s = t.c_str();
  int base = 10;
  bool neg = false;
  if (*s == '-' || *s == '+') neg = (*s++ == '-');
  if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    base = 16;
    s += 2;
  }
  if (*s == '\0') return false;
  errno = 0;
  char* end = nullptr;
  unsigned long long mag = std::strtoull(s, &end, base);
  if (errno != 0 || *end != '\0' || *s == '-' || *s == '+') return false;
  if (mag > static_cast<unsigned long long>(std::numeric_limits<int64_t>::max())) return false;
  *out = neg ? -static_cast<int64_t>(mag) : static_cast<int64_t>(mag);
  return true;
}

}  // namespace

int64_t parse_int(const RawValue& v, const std::string& key, int64_t lo, int64_t hi,
                  const std::string& unit) {
  std::string expected = "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                         "]" + (unit.empty() ? "" : " " + unit);
  const std::string& text = scalar_or_throw(v, key, expected);
  std::string number = text;
  int64_t scale = 1;
  if (unit == "bytes") split_suffix(text, &number, &scale);
  int64_t x = 0;
  if (!parse_int64(number, &x)) bad(v, key, expected);
  if (scale != 1) {
    if (x < 0 || x > std::numeric_limits<int64_t>::max() / scale) bad(v, key, expected);
    x *= scale;
  }
  if (x < lo || x > hi) bad(v, key, expected);
  return x;
}

double parse_float(const RawValue& v, const std::string& key, double lo, double hi) {
  std::string expected = "a number in [" + format_float(lo) + ", " + format_float(hi) + "]";
  const std::string& text = scalar_or_throw(v, key, expected);
  if (text.empty()) bad(v, key, expected);
  errno = 0;
  char* end = nullptr;
  double x = std::strtod(text.c_str(), &end);
  if (errno != 0 || *end != '\0' || !std::isfinite(x) || x < lo || x > hi) bad(v, key, expected);
  return x;
}

bool parse_bool(const RawValue& v, const std::string& key) {
  const std::string& text = scalar_or_throw(v, key, "true or false");
  if (text == "true") return true;
  if (text == "false") return false;
  bad(v, key, "true or false");
}

std::string parse_string(const RawValue& v, const std::string& key) {
  const std::string& text = scalar_or_throw(v, key, "a non-empty string");
  if (text.empty() || text.size() > 256) bad(v, key, "a non-empty string of at most 256 chars");
  return text;
}

int parse_enum(const RawValue& v, const std::string& key, const std::vector<std::string>& names) {
  std::string expected = "one of " + join(names, " | ");
  const std::string& text = scalar_or_throw(v, key, expected);
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (names[i] == text) return static_cast<int>(i);
  }
  bad(v, key, expected);
}

std::vector<int> parse_enum_list(const RawValue& v, const std::string& key,
                                 const std::vector<std::string>& names, bool distinct) {
  std::string expected = std::string(distinct ? "a non-empty list of distinct "
                                              : "a non-empty list (at most 16) of ") +
                         join(names, " | ");
  std::size_t max_len = distinct ? names.size() : 16;
  if (!v.node.IsSequence() || v.node.size() == 0 || v.node.size() > max_len) {
    bad(v, key, expected);
  }
  std::vector<int> out;
  for (const auto& item : v.node) {
    RawValue iv{item, v.where, v.option};
    int e = parse_enum(iv, key, names);
    if (distinct && std::find(out.begin(), out.end(), e) != out.end()) bad(iv, key, expected);
    out.push_back(e);
  }
  return out;
}

std::vector<int64_t> parse_int_list(const RawValue& v, const std::string& key, int64_t lo,
                                    int64_t hi, std::size_t min_len, std::size_t max_len) {
  std::string expected = fmt::format("a list of {} to {} integers in [{}, {}]", min_len, max_len,
                                     lo, hi);
  if (!v.node.IsSequence() || v.node.size() < min_len || v.node.size() > max_len) {
    bad(v, key, expected);
  }
  std::vector<int64_t> out;
  for (const auto& item : v.node) {
    RawValue iv{item, v.where, v.option};
    out.push_back(parse_int(iv, key, lo, hi, ""));
  }
  return out;
}

std::string join(const std::vector<std::string>& parts, const std::string& sep) {
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i) out += (i ? sep : "") + parts[i];
  return out;
}

std::string format_float(double x) { return fmt::format("{}", x); }

std::string quote_string(const std::string& s) {
  std::string out = "\"";
  for (char ch : s) {
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += ch;
    } else if (static_cast<unsigned char>(ch) < 0x20) {
      out += fmt::format("\\x{:02x}", static_cast<unsigned char>(ch));
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

std::string closest_key(const std::string& key, const std::vector<std::string>& keys) {
  auto distance = [](const std::string& a, const std::string& b) {
    std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
      cur[0] = i;
      for (std::size_t j = 1; j <= b.size(); ++j) {
        cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
      }
      std::swap(prev, cur);
    }
    return prev[b.size()];
  };
  if (key.size() > 200) return "";
  std::string best;
  std::size_t best_d = std::max<std::size_t>(3, key.size() / 3) + 1;
  for (const auto& k : keys) {
    // Compare against the full key and its last component, so "mxu.row" finds "mxu.rows".
    std::size_t d = distance(key, k);
    if (d < best_d) {
      best_d = d;
      best = k;
    }
  }
  return best;
}

std::string dump_nested(const std::vector<std::array<std::string, 3>>& rows) {
  std::string out;
  std::vector<std::string> open;  // currently open sections
  for (const auto& [key, value, comment] : rows) {
    std::vector<std::string> parts;
    std::stringstream ss(key);
    for (std::string p; std::getline(ss, p, '.');) parts.push_back(p);
    std::size_t common = 0;
    while (common < open.size() && common + 1 < parts.size() && open[common] == parts[common]) {
      ++common;
    }
    open.resize(common);
    while (open.size() + 1 < parts.size()) {
      out += std::string(2 * open.size(), ' ') + parts[open.size()] + ":\n";
      open.push_back(parts[open.size()]);
    }
    out += fmt::format("{}{}: {}", std::string(2 * open.size(), ' '), parts.back(), value);
    if (!comment.empty()) out += "  # " + comment;
    out += "\n";
  }
  return out;
}

std::string markdown_table(const std::vector<std::array<std::string, 6>>& rows) {
  std::string out =
      "| key | type | default | unit | valid | description |\n"
      "|---|---|---|---|---|---|\n";
  for (const auto& r : rows) {
    out += fmt::format("| `{}` | {} | {} | {} | {} | {} |\n", r[0], r[1], r[2], r[3], r[4], r[5]);
  }
  return out;
}

std::string fnv1a_hex(const std::string& text) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char ch : text) {
    h ^= ch;
    h *= 0x100000001b3ull;
  }
  return fmt::format("{:016x}", h);
}

}  // namespace tpu::arch
