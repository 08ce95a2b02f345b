using System.Collections.Concurrent;
using System.Globalization;
using Microsoft.Extensions.Logging;

namespace Resh.IntegrationTests;

/// <summary>
/// Keeps the host's last log lines in memory, so a test that times out can say what the group was doing (the lines
/// are only read when a test fails).
/// </summary>
public sealed class RecentLog : ILoggerProvider
{
    private const int Capacity = 400;

    /// <summary>Information, or what RESH_TEST_LOG_LEVEL names (Debug to see every passive update).</summary>
    public static readonly LogLevel Level = Enum.TryParse<LogLevel>(Environment.GetEnvironmentVariable("RESH_TEST_LOG_LEVEL"), true, out var level) ? level : LogLevel.Information;

    private readonly ConcurrentQueue<string> _lines = new();

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName[(categoryName.LastIndexOf('.') + 1)..]);

    /// <summary>The last lines, oldest first.</summary>
    public string Tail(int lines = 60) => string.Join('\n', _lines.ToArray().TakeLast(lines));

    public void Dispose()
    {
    }

    private void Add(string line)
    {
        _lines.Enqueue(line);
        while (_lines.Count > Capacity && _lines.TryDequeue(out _))
        {
        }
    }

    private sealed class Logger(RecentLog owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= Level;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            owner.Add(string.Create(CultureInfo.InvariantCulture, $"{DateTime.UtcNow:HH:mm:ss.fff} {logLevel.ToString()[..4]} {category}[{eventId.Id}] {formatter(state, exception)}{(exception is null ? "" : " " + exception.Message)}"));
    }
}
