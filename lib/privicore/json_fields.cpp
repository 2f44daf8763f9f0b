#include "privicore/json_fields.hpp"

#include <charconv>

#include "privicore/parse.hpp"

namespace tokenbroker::privicore::json_fields {

const json* field(const json& j, std::initializer_list<const char*> keys) {
  if (!j.is_object()) return nullptr;
  for (const char* k : keys) {
    auto it = j.find(k);
    if (it != j.end() && !it->is_null()) return &*it;
  }
  return nullptr;
}

std::optional<std::string> string_field(const json& j, std::initializer_list<const char*> keys) {
  const json* v = field(j, keys);
  if (!v || !v->is_string() || v->get_ref<const std::string&>().empty()) return std::nullopt;
  return v->get<std::string>();
}

std::string optional_string(const json& j, std::initializer_list<const char*> keys) {
  return string_field(j, keys).value_or(std::string{});
}

std::optional<std::int64_t> integer(const json* v) {
  if (!v) return std::nullopt;
  if (v->is_number_integer()) return v->get<std::int64_t>();
  if (v->is_number_float()) {
    // Found by fuzz_privicore_parse: 1e308 cast to an integer is undefined behaviour.
    double d = v->get<double>();
    if (!(d > -9.0e18 && d < 9.0e18)) return std::nullopt;  // also NaN
    return static_cast<std::int64_t>(d);
  }
  if (!v->is_string()) return std::nullopt;
  const auto& s = v->get_ref<const std::string&>();
  std::int64_t n = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (s.empty() || ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
  return n;
}

std::vector<std::string> scope_list(const json* v) {
  std::vector<std::string> out;
  if (!v) return out;
  if (v->is_array()) {
    for (const auto& s : *v)
      if (s.is_string()) out.push_back(s.get<std::string>());
  } else if (v->is_string()) {
    std::string cur;
    for (char c : v->get_ref<const std::string&>()) {
      if (c == ',' || c == ' ') {
        if (!cur.empty()) out.push_back(std::move(cur));
        cur.clear();
      } else {
        cur += c;
      }
    }
    if (!cur.empty()) out.push_back(std::move(cur));
  }
  return out;
}

std::string text(const json* v, std::size_t max) {
  if (!v || v->is_null()) return {};
  return sanitize(v->is_string() ? v->get_ref<const std::string&>()
                                 : v->dump(-1, ' ', false, json::error_handler_t::replace),
                  max);
}

}  // namespace tokenbroker::privicore::json_fields
