// A table of typed configuration fields (key, type, default, unit, description, valid range)
// and the YAML loader, validator and dumper built from it. The arch and pod configs are
// both declared as one Schema each; nothing else knows their keys.
#pragma once

#include <yaml-cpp/yaml.h>

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "arch/error.h"

namespace tpu::arch {

enum class FieldType { kInt, kFloat, kBool, kString, kEnum, kEnumList, kIntList };

/// A value as the user wrote it: the YAML node and where it came from.
struct RawValue {
  YAML::Node node;
  SourceLocation where;
  std::string option;  ///< the command-line option that gave it (--set, --pod-set), or empty
};

/// Everything the user gave, flattened to dotted keys; remembers locations so that
/// cross-field checks can point at the offending line.
class RawConfig {
 public:
  /// Parses a YAML file. Throws InputError for unreadable files, YAML syntax errors, unknown
  /// keys (checked against known_keys) and non-mapping documents.
  static RawConfig from_file(const std::string& path, const std::vector<std::string>& known_keys);
  /// Parses YAML text; `name` is used as the file name in messages.
  static RawConfig from_string(const std::string& text, const std::string& name,
                               const std::vector<std::string>& known_keys);

  /// Applies a `key=value` override from the command line (value parsed as YAML).
  /// `option` names the command-line option in messages (--set, --pod-set).
  void apply_override(const std::string& assignment, const std::vector<std::string>& known_keys,
                      const std::string& option = "--set");

  const RawValue* find(const std::string& key) const;
  /// Location of a key if given, else the file itself.
  SourceLocation where(const std::string& key) const;
  /// The key as messages name it: "--set KEY" when an override gave the value.
  std::string label(const std::string& key) const;
  const std::string& file() const { return file_; }

 private:
  void flatten(const YAML::Node& node, const std::string& prefix,
               const std::vector<std::string>& known_keys);
  std::string file_;
  std::map<std::string, RawValue> values_;
};

/// One field of a configuration struct C.
template <class C>
struct Field {
  std::string key;
  FieldType type;
  std::string default_text;  ///< YAML text of the default; empty means the key is required
  std::string unit;
  std::string description;
  std::string range;  ///< human-readable valid range or choices, used in errors and docs
  std::function<void(C&, const RawValue&)> set;
  std::function<std::string(const C&)> get;  ///< canonical YAML text of the value
};

/// parts joined with sep.
std::string join(const std::vector<std::string>& parts, const std::string& sep);

/// Parsing helpers shared by the typed field builders; each throws InputError naming key,
/// expected range and the text found.
int64_t parse_int(const RawValue& v, const std::string& key, int64_t lo, int64_t hi,
                  const std::string& unit);
double parse_float(const RawValue& v, const std::string& key, double lo, double hi);
bool parse_bool(const RawValue& v, const std::string& key);
std::string parse_string(const RawValue& v, const std::string& key);
int parse_enum(const RawValue& v, const std::string& key, const std::vector<std::string>& names);
std::vector<int> parse_enum_list(const RawValue& v, const std::string& key,
                                 const std::vector<std::string>& names, bool distinct);
std::vector<int64_t> parse_int_list(const RawValue& v, const std::string& key, int64_t lo,
                                    int64_t hi, std::size_t min_len, std::size_t max_len);
/// Shortest text that reads back as the same double.
std::string format_float(double x);
std::string quote_string(const std::string& s);
/// Closest key by edit distance, for "did you mean" hints (empty if nothing is close).
std::string closest_key(const std::string& key, const std::vector<std::string>& keys);

template <class C>
class Schema {
 public:
  using IntRef = std::function<int64_t&(C&)>;
  using FloatRef = std::function<double&(C&)>;
  using BoolRef = std::function<bool&(C&)>;
  using StringRef = std::function<std::string&(C&)>;

  void add_int(std::string key, IntRef ref, std::string def, int64_t lo, int64_t hi,
               std::string unit, std::string desc) {
    std::string range = fmt_range(lo, hi);
    add({key, FieldType::kInt, std::move(def), unit, std::move(desc), range,
         [=](C& c, const RawValue& v) { ref(c) = parse_int(v, key, lo, hi, unit); },
         [=](const C& c) { return std::to_string(ref(const_cast<C&>(c))); }});
  }
  void add_float(std::string key, FloatRef ref, std::string def, double lo, double hi,
                 std::string unit, std::string desc) {
    std::string range = "[" + format_float(lo) + ", " + format_float(hi) + "]";
    add({key, FieldType::kFloat, std::move(def), std::move(unit), std::move(desc), range,
         [=](C& c, const RawValue& v) { ref(c) = parse_float(v, key, lo, hi); },
         [=](const C& c) { return format_float(ref(const_cast<C&>(c))); }});
  }
  void add_bool(std::string key, BoolRef ref, std::string def, std::string desc) {
    add({key, FieldType::kBool, std::move(def), "", std::move(desc), "true | false",
         [=](C& c, const RawValue& v) { ref(c) = parse_bool(v, key); },
         [=](const C& c) { return std::string(ref(const_cast<C&>(c)) ? "true" : "false"); }});
  }
  void add_string(std::string key, StringRef ref, std::string def, std::string desc) {
    add({key, FieldType::kString, std::move(def), "", std::move(desc), "a non-empty string",
         [=](C& c, const RawValue& v) { ref(c) = parse_string(v, key); },
         [=](const C& c) { return quote_string(ref(const_cast<C&>(c))); }});
  }
  template <class E>
  void add_enum(std::string key, std::function<E&(C&)> ref, std::string def,
                std::vector<std::string> names, std::string desc) {
    add({key, FieldType::kEnum, std::move(def), "", std::move(desc), join(names, " | "),
         [=](C& c, const RawValue& v) { ref(c) = static_cast<E>(parse_enum(v, key, names)); },
         [=](const C& c) { return names.at(static_cast<int>(ref(const_cast<C&>(c)))); }});
  }
  template <class E>
  void add_enum_list(std::string key, std::function<std::vector<E>&(C&)> ref, std::string def,
                     std::vector<std::string> names, bool distinct, std::string desc) {
    add({key, FieldType::kEnumList, std::move(def), "", std::move(desc),
         std::string(distinct ? "a list of distinct " : "a list of ") + join(names, " | "),
         [=](C& c, const RawValue& v) {
           std::vector<E> out;
           for (int i : parse_enum_list(v, key, names, distinct)) out.push_back(static_cast<E>(i));
           ref(c) = out;
         },
         [=](const C& c) {
           std::vector<std::string> parts;
           for (E e : ref(const_cast<C&>(c))) parts.push_back(names.at(static_cast<int>(e)));
           return "[" + join(parts, ", ") + "]";
         }});
  }
  void add_int_list(std::string key, std::function<std::vector<int64_t>&(C&)> ref,
                    std::string def, int64_t lo, int64_t hi, std::size_t min_len,
                    std::size_t max_len, std::string unit, std::string desc) {
    std::string range = fmt_range(min_len, max_len) + " values, each in " + fmt_range(lo, hi);
    add({key, FieldType::kIntList, std::move(def), std::move(unit), std::move(desc), range,
         [=](C& c, const RawValue& v) {
           ref(c) = parse_int_list(v, key, lo, hi, min_len, max_len);
         },
         [=](const C& c) {
           std::vector<std::string> parts;
           for (int64_t x : ref(const_cast<C&>(c))) parts.push_back(std::to_string(x));
           return "[" + join(parts, ", ") + "]";
         }});
  }

  const std::vector<Field<C>>& fields() const { return fields_; }
  std::vector<std::string> keys() const {
    std::vector<std::string> out;
    for (const auto& f : fields_) out.push_back(f.key);
    return out;
  }

  /// Fills every field from raw (or its default); a missing required key is an error.
  C load(const RawConfig& raw) const {
    C c{};
    for (const auto& f : fields_) {
      if (const RawValue* v = raw.find(f.key)) {
        f.set(c, *v);
      } else if (!f.default_text.empty()) {
        f.set(c, RawValue{YAML::Load(f.default_text), SourceLocation{"<default>", 0, 0}, {}});
      } else {
        throw InputError(SourceLocation{raw.file(), 0, 0}, f.key, "a value (" + f.range + ")",
                         "the key missing (it is required)");
      }
    }
    return c;
  }

  /// YAML text with every field, nested by dotted key, each commented with unit and meaning.
  std::string dump(const C& c) const;
  /// "key=value" lines in field order: the canonical text the fingerprint hashes.
  std::string canonical(const C& c) const {
    std::string out;
    for (const auto& f : fields_) out += f.key + "=" + f.get(c) + "\n";
    return out;
  }
  /// Markdown table of the schema (docs are generated from this and checked by a test).
  std::string markdown() const;

 private:
  static std::string fmt_range(int64_t lo, int64_t hi) {
    return "[" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
  }
  void add(Field<C> f) { fields_.push_back(std::move(f)); }
  std::vector<Field<C>> fields_;
};

/// Nested YAML for (key, value, comment) rows in order; keys sharing a dotted prefix must be
/// contiguous. Used by Schema::dump.
std::string dump_nested(const std::vector<std::array<std::string, 3>>& rows);
/// Markdown table rows for Schema::markdown.
std::string markdown_table(const std::vector<std::array<std::string, 6>>& rows);
/// 64-bit FNV-1a of text, as 16 hex digits.
std::string fnv1a_hex(const std::string& text);

/// Where a YAML node was written (1-based line and column; 0 when unknown).
SourceLocation yaml_location(const YAML::Node& n, const std::string& file);
/// A short description of a YAML node for "found ..." in messages ('value', a list, ...).
std::string describe_yaml(const YAML::Node& n);

template <class C>
std::string Schema<C>::dump(const C& c) const {
  std::vector<std::array<std::string, 3>> rows;
  for (const auto& f : fields_) {
    std::string comment = f.unit.empty() ? f.description : "[" + f.unit + "] " + f.description;
    rows.push_back({f.key, f.get(c), comment});
  }
  return dump_nested(rows);
}

template <class C>
std::string Schema<C>::markdown() const {
  static const char* kTypeNames[] = {"int", "float", "bool", "string", "enum", "enum list",
                                     "int list"};
  std::vector<std::array<std::string, 6>> rows;
  for (const auto& f : fields_) {
    rows.push_back({f.key, kTypeNames[static_cast<int>(f.type)],
                    f.default_text.empty() ? "required" : f.default_text, f.unit, f.range,
                    f.description});
  }
  return markdown_table(rows);
}

}  // namespace tpu::arch
